"""on_kill cancels the BigQuery job in flight, and the day stays whole (old or new)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from airflow_provider_somlier import errors
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.faultproxy import FaultProxy
from tests.helpers import rows_per_day, run_context

UTC = dt.timezone.utc
RUN_AT = dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def test_on_kill_while_the_transactions_answer_is_lost_cancels_that_job(
    emulator, registry, features_table, destination, bq_client, monkeypatch
):
    base = dict(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=destination, passthrough_columns=["row_id"],
    )
    MLOpsOfflineOperator(**base).execute(run_context(RUN_AT))
    with FaultProxy(emulator.rest_port) as rest:
        extras = {**emulator.connection_extras(), "api_endpoint": rest.url, "retry_deadline_seconds": 8}
        monkeypatch.setenv("AIRFLOW_CONN_BQ_KILLED", json.dumps({"conn_type": "google_cloud_platform", "extra": extras}))
        operator = MLOpsOfflineOperator(**{**base, "model_ref": "diabetes-ridge/2", "gcp_conn_id": "bq_killed"})
        rest.fault_on_request(b"BEGIN TRANSACTION", "hold")  # the warehouse runs it; its answer never comes
        worker, outcome = _execute_in_background(operator)
        assert rest.triggered.wait(60), "the transaction was never submitted"
        job_id = operator._bigquery._job_in_flight
        assert job_id and job_id.startswith("somlier_replace_")
        _wait_until_known(bq_client, job_id)  # the warehouse has it; the task still waits for the answer
        with pytest.MonkeyPatch.context() as patch:
            cancelled = []
            hook = operator._bigquery
            original = hook.cancel_running_job
            patch.setattr(hook, "cancel_running_job", lambda: cancelled.append(original()) or cancelled[-1])
            operator.on_kill()
        assert cancelled == [job_id]
        worker.join(60)
    # (Airflow ends the process after on_kill; left alone, the task fails by name at the deadline.)
    assert isinstance(outcome.get("error"), errors.WarehouseUnavailableError), outcome
    # the emulator had already committed when the cancel arrived: the day is the new one, whole
    assert rows_per_day(bq_client, destination) == {"2026-11-19": 50}
    versions = {r.v for r in bq_client.query(f"SELECT DISTINCT model_version AS v FROM `{destination}`").result()}
    assert len(versions) == 1


def _execute_in_background(operator: MLOpsOfflineOperator) -> tuple[threading.Thread, dict]:
    """The task running on a thread, as in a worker: its summary or error lands in the dict."""
    outcome: dict = {}

    def execute():
        try:
            outcome["summary"] = operator.execute(run_context(RUN_AT))
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    return worker, outcome


def _wait_until_known(bq_client, job_id: str) -> None:
    import time

    from google.api_core.exceptions import NotFound

    for _ in range(200):
        try:
            bq_client.get_job(job_id, retry=None, timeout=5)
            return
        except NotFound:
            time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the warehouse")


def test_on_kill_with_nothing_in_flight_does_nothing():
    operator = MLOpsOfflineOperator(
        task_id="predict", model_ref="m/1", dataset_ref="d.t", dataset_load_column="c", destination_table_ref="d.o",
    )
    operator.on_kill()  # before execute: no hook, no job, no error


def test_on_kill_while_a_view_s_day_is_copied_cancels_that_query(
    emulator, registry, features_table, destination, bq_client, monkeypatch
):
    """The copy of a view's day is a query that can run long: a kill cancels it, not only loads and transactions."""
    view = f"{emulator.project}.features.diabetes_on_kill_view"
    bq_client.query(f"CREATE OR REPLACE VIEW `{view}` AS SELECT * FROM `{features_table}`").result()
    with FaultProxy(emulator.rest_port) as rest:
        extras = {**emulator.connection_extras(), "api_endpoint": rest.url, "retry_deadline_seconds": 8}
        monkeypatch.setenv("AIRFLOW_CONN_BQ_KILLED", json.dumps({"conn_type": "google_cloud_platform", "extra": extras}))
        operator = MLOpsOfflineOperator(
            task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=view, dataset_load_column="load_date",
            destination_table_ref=destination, passthrough_columns=["row_id"], gcp_conn_id="bq_killed",
            baseline="none",
        )
        rest.fault_on_request(b"CREATE OR REPLACE TABLE", "hold")  # the warehouse runs it; its answer never comes
        worker, outcome = _execute_in_background(operator)
        assert rest.triggered.wait(60), "the copy was never submitted"
        job_id = operator._bigquery._job_in_flight
        assert job_id and job_id.startswith("somlier_query_")
        _wait_until_known(bq_client, job_id)
        cancelled = operator._bigquery.cancel_running_job()
        assert cancelled == job_id
        worker.join(60)
    assert "error" in outcome, outcome  # left alone after on_kill, the task fails at the deadline, writing nothing
