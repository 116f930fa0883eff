"""The day filter on each load-column type, across KST midnight, against the emulator."""

import datetime as dt

import pytest

from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import rows_per_day, run_context

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def midnight_table(emulator, bq_client, features_table):
    """Rows one second either side of KST midnight 2026-11-21, in DATE, DATETIME and TIMESTAMP columns."""
    table = f"{emulator.project}.features.kst_midnight"
    bq_client.query(
        f"""CREATE OR REPLACE TABLE `{table}` AS
        SELECT f.* EXCEPT (load_date, event_ts),
          IF(MOD(row_id, 2) = 0, TIMESTAMP '2026-11-20 14:59:59+00', TIMESTAMP '2026-11-20 15:00:00+00') AS ts,
          IF(MOD(row_id, 2) = 0, DATETIME '2026-11-20 23:59:59', DATETIME '2026-11-21 00:00:00') AS local_dt,
          IF(MOD(row_id, 2) = 0, DATE '2026-11-20', DATE '2026-11-21') AS d
        FROM `{features_table}` AS f WHERE f.load_date = DATE '2026-11-20'"""
    ).result()
    return table  # 25 rows on each side


@pytest.mark.parametrize(
    "column, by_kst, expected",
    [
        # the run at 2026-11-21 15:30 UTC is 2026-11-22 in KST; window 1 → 2026-11-21 (KST)
        ("ts", True, {"2026-11-21": 25}),
        ("local_dt", True, {"2026-11-21": 25}),
        ("d", True, {"2026-11-21": 25}),
        # by UTC the same run is 2026-11-21; window 1 → 2026-11-20, and every ts is on the 20th in UTC
        ("ts", False, {"2026-11-20": 50}),
        ("local_dt", False, {"2026-11-20": 25}),
        ("d", False, {"2026-11-20": 25}),
    ],
)
def test_each_column_type_selects_the_zones_day(registry, midnight_table, destination, bq_client, column, by_kst, expected):
    op = MLOpsOfflineOperator(
        task_id="predict",
        model_ref="diabetes-ridge@champion",
        dataset_ref=midnight_table,
        dataset_load_column=column,
        dataset_load_by_kst=by_kst,
        destination_table_ref=destination,
    )
    op.execute(run_context(dt.datetime(2026, 11, 21, 15, 30, tzinfo=UTC)))
    assert rows_per_day(bq_client, destination) == expected


def test_write_empty_clears_a_day_that_lost_its_rows(registry, features_table, destination, bq_client):
    kwargs = dict(task_id="predict", model_ref="diabetes-ridge/1", dataset_load_column="load_date", destination_table_ref=destination)
    MLOpsOfflineOperator(dataset_ref=features_table, **kwargs).execute(run_context(dt.datetime(2026, 11, 20, tzinfo=UTC)))
    assert rows_per_day(bq_client, destination) == {"2026-11-19": 50}
    empty = features_table + "_empty"
    bq_client.query(f"CREATE OR REPLACE TABLE `{empty}` AS SELECT * FROM `{features_table}` WHERE FALSE").result()
    summary = MLOpsOfflineOperator(dataset_ref=empty, on_empty="write_empty", **kwargs).execute(
        run_context(dt.datetime(2026, 11, 20, tzinfo=UTC))
    )
    assert summary["rows_written"] == 0
    assert rows_per_day(bq_client, destination) == {}


def test_refs_and_window_are_template_fields():
    assert {"model_ref", "dataset_ref", "destination_table_ref", "dataset_load_window", "dataset_load_column"} <= set(
        MLOpsOfflineOperator.template_fields
    )
