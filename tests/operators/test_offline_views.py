"""A view as the source: its day is copied into a table first, because BigQuery's Storage Read API reads tables only.

The emulator reads views directly; BigQuery refuses them ("non-table entities cannot be
read with the storage API"). These runs read through ``tests/storage_read_front.py``, a
gRPC front that refuses a read session on anything but a table, as BigQuery does, so a run
that asked the Storage Read API for a view would fail here as it would in production.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_somlier import errors
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from airflow_provider_somlier.operators.sharded import (
    MLOpsShardCommitOperator,
    MLOpsShardPlanOperator,
    MLOpsShardScoreOperator,
)
from tests.helpers import rows_per_day, run_context, staging_tables
from tests.storage_read_front import StorageReadFront

UTC = dt.timezone.utc
RUN_AT = dt.datetime(2026, 11, 19, 0, 0, tzinfo=UTC)  # KST: target day 2026-11-18


@pytest.fixture(scope="module")
def views(registry, emulator, bq_client, features_table):
    """A view of the feature table (one column renamed, as views are used), and a materialized view."""
    view = f"{emulator.project}.features.diabetes_view"
    bq_client.query(
        f"CREATE OR REPLACE VIEW `{view}` AS SELECT * EXCEPT (bmi), bmi * 1.0 AS bmi FROM `{features_table}`"
    ).result()
    return {"view": view, "table": features_table}


@pytest.fixture
def faithful_conn(emulator, bq_client, monkeypatch):
    """Connection ``bq_faithful``: the emulator's REST API, its Storage Read API behind the front."""
    def table_type(path: str) -> str:
        _, project, _, dataset, _, table = path.split("/")
        return bq_client.get_table(f"{project}.{dataset}.{table}").table_type

    with StorageReadFront(f"127.0.0.1:{emulator.grpc_port}", table_type) as front:
        extras = {**emulator.connection_extras(), "storage_read_endpoint": front.grpc_endpoint}
        monkeypatch.setenv("AIRFLOW_CONN_BQ_FAITHFUL",
                           json.dumps({"conn_type": "google_cloud_platform", "extra": extras}))
        yield front


def _operator(cls=MLOpsOfflineOperator, **overrides):
    kwargs = dict(task_id="predict", model_ref="diabetes-ridge/1", dataset_load_column="load_date",
                  passthrough_columns=["row_id"], gcp_conn_id="bq_faithful", baseline="none")
    return cls(**{**kwargs, **overrides})


def _predictions(bq_client, destination: str) -> list[tuple]:
    rows = bq_client.query(
        f"SELECT CAST(target_date AS STRING) AS d, row_id, prediction AS p FROM `{destination}` ORDER BY row_id"
    ).result()
    return [tuple(row.values()) for row in rows]


def test_the_front_refuses_a_read_session_on_a_view_as_bigquery_does(views, faithful_conn):
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.refs import parse_table_ref

    hook = SomlierBigQueryHook(gcp_conn_id="bq_faithful")
    with pytest.raises(errors.ReadRefusedError, match="non-table entities cannot be read"):
        hook.read_batches(parse_table_ref(views["view"], hook.project_id, field="dataset_ref"), ["row_id"], "")


def test_a_view_s_day_is_scored_like_its_table_s_and_its_copy_is_dropped(
    views, faithful_conn, destination, bq_client, emulator
):
    summary = _operator(dataset_ref=views["view"], destination_table_ref=destination).execute(run_context(RUN_AT))
    assert summary["rows_written"] == 50 and summary["source"] == views["view"]
    assert faithful_conn.refused == [] and len(faithful_conn.sessions) == 1
    assert "_somlier_staging_" in faithful_conn.sessions[0]  # the copy was read, not the view
    assert staging_tables(bq_client, destination) == []  # and dropped
    table_day = f"{destination}_table_day"
    _operator(dataset_ref=views["table"], destination_table_ref=table_day).execute(run_context(RUN_AT))
    from_view, from_table = _predictions(bq_client, destination), _predictions(bq_client, table_day)
    assert [row[:2] for row in from_view] == [row[:2] for row in from_table]
    assert [row[2] for row in from_view] == pytest.approx([row[2] for row in from_table], rel=1e-9)


def test_a_view_s_empty_day_is_skipped_and_leaves_no_copy(views, faithful_conn, destination, bq_client):
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException):
        _operator(dataset_ref=views["view"], destination_table_ref=destination).execute(
            run_context(dt.datetime(2026, 12, 1, tzinfo=UTC)))
    assert staging_tables(bq_client, destination) == []


def test_a_failing_run_on_a_view_drops_its_copy_and_writes_nothing(views, faithful_conn, destination, bq_client):
    with pytest.raises(errors.QualityCheckError):
        _operator(dataset_ref=views["view"], destination_table_ref=destination,
                  quality_checks={"prediction_range": [0, 1]}).execute(run_context(RUN_AT))
    assert staging_tables(bq_client, destination) == []


def test_a_sharded_day_of_a_view_reads_one_copy_and_the_commit_drops_it(
    views, faithful_conn, destination, bq_client
):
    from types import SimpleNamespace

    pushed: dict = {}
    context = run_context(RUN_AT, dag_id="views")
    context["ti"] = SimpleNamespace(dag_id="views", task_id="plan", try_number=1,
                                    xcom_push=lambda key, value: pushed.__setitem__(key, value))
    kwargs = dict(dataset_ref=views["view"], destination_table_ref=destination)
    shards = _operator(MLOpsShardPlanOperator, task_id="plan", shards=2, **kwargs).execute(context)
    plan = pushed["plan"]
    assert plan["read_copy"] and plan["source_rows"] == 50
    results = [_operator(MLOpsShardScoreOperator, task_id="score", plan=plan, shard=shard, **kwargs).execute(context)
               for shard in shards]
    summary = _operator(MLOpsShardCommitOperator, task_id="commit", plan=plan, shard_results=results,
                        **kwargs).execute(context)
    assert summary["rows_written"] == 50
    assert rows_per_day(bq_client, destination) == {"2026-11-18": 50}
    assert faithful_conn.refused == []
    assert staging_tables(bq_client, destination) == []  # the shards' staging and the copy
