"""Staging tables: names fit any destination; stale ones of a destination are swept by its next run."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_somlier.hooks import bigquery_staging as bq
from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import run_context


def test_staging_names_stay_short_and_distinct_for_long_destination_names():
    long_a, long_b = "p" * 1000 + "a", "p" * 1000 + "b"
    name_a = bq.staging_table_name(long_a, dt.date(2026, 11, 19), "0" * 12)
    assert len(name_a) <= 208
    assert bq.is_staging_of(name_a, long_a) and not bq.is_staging_of(name_a, long_b)


def test_staging_of_one_destination_is_not_taken_for_anothers():
    name = bq.staging_table_name("preds", dt.date(2026, 11, 19), "0" * 12)
    assert bq.is_staging_of(name, "preds")
    assert not bq.is_staging_of(name, "preds_v2") and not bq.is_staging_of(name, "pred")
    legacy = "_somlier_staging_preds_20261119_0123456789ab_89abcdef"  # the earlier naming
    assert bq.is_staging_of(legacy, "preds") and not bq.is_staging_of(legacy, "preds_v2")
    assert not bq.is_staging_of("_somlier_staging_preds_v2_20261119_0123456789ab_89abcdef", "preds")


@pytest.fixture
def sweep_destination(emulator, bq_client, destination):
    """A destination in a dataset of its own: these tests leave other tables' staging behind."""
    dataset = f"{emulator.project}.staging_sweep"
    bq_client.create_dataset(dataset, exists_ok=True)
    return f"{dataset}.{destination.rsplit('.', 1)[1]}"


def test_a_run_sweeps_stale_staging_of_its_destination_and_nothing_else(
    registry, features_table, sweep_destination, bq_client, monkeypatch
):
    destination = sweep_destination
    dataset, table = destination.rsplit(".", 1)
    stale_own = [
        bq.staging_table_name(table, dt.date(2026, 11, 18), "a" * 12),
        f"_somlier_staging_{table}_20261118_0123456789ab_89abcdef",
    ]
    others = [bq.staging_table_name(f"{table}_v2", dt.date(2026, 11, 18), "a" * 12), f"{table}_backup"]
    for name in stale_own + others:
        bq_client.create_table(f"{dataset}.{name}", retry=None, timeout=30)
    monkeypatch.setattr(bq, "STAGING_TTL", dt.timedelta(0))  # everything existing counts as stale

    MLOpsOfflineOperator(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=destination,
    ).execute(run_context(dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)))

    left = {t.table_id for t in bq_client.list_tables(dataset)}
    assert not left & set(stale_own)
    assert set(others) <= left
    assert table in left


def test_fresh_staging_tables_of_a_concurrent_run_are_left_alone(sweep_destination, bq_client):
    from airflow_provider_somlier.refs import parse_table_ref

    destination = sweep_destination
    dataset, table = destination.rsplit(".", 1)
    running = bq.staging_table_name(table, dt.date(2026, 11, 18), "b" * 12)
    bq_client.create_table(f"{dataset}.{running}", retry=None, timeout=30)
    assert SomlierBigQueryHook().sweep_stale_staging(parse_table_ref(destination)) == []
    assert running in {t.table_id for t in bq_client.list_tables(dataset)}
