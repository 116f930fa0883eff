"""Outages are retried with a delay and backoff by default; input errors fail at once, retries left or not."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest

from airflow_provider_somlier.devtools.emulator import free_port
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import load_dag_file, offline_dag_source

UTC = dt.timezone.utc
REPO = Path(__file__).resolve().parents[2]

def _run(dag_id: str, *, model_ref: str, features_table: str, destination: str, gcp_conn_id: str,
         mlflow_conn_id: str = "mlflow_default"):
    source = offline_dag_source(
        dag_id, default_args='{"retries": 2, "retry_delay": dt.timedelta(seconds=0)}', model_ref=model_ref,
        dataset_ref=features_table, dataset_load_column="load_date", destination_table_ref=destination,
        gcp_conn_id=gcp_conn_id, mlflow_conn_id=mlflow_conn_id,
    )
    dag = load_dag_file(source, dag_id)
    run = dag.test(logical_date=dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC))
    ti = run.get_task_instance("predict")
    return run, ti


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"somlier_retry_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dag_path", ["dags/example_offline_inference.py", "tests/generate/golden/offline_v2.py"])
def test_the_example_and_generated_dags_retry_outages_with_backoff(dag_path):
    task = _module(REPO / dag_path).dag.get_task("predict")
    assert task.retries >= 2
    assert task.retry_delay >= dt.timedelta(minutes=1)
    assert task.retry_exponential_backoff >= 2
    assert task.max_retry_delay is not None


def test_dag_default_args_override_the_operators_retry_defaults():
    from airflow.sdk import DAG

    with DAG("somlier_no_retries", schedule=None, default_args={"retries": 0}):
        task = MLOpsOfflineOperator(
            task_id="predict", model_ref="m/1", dataset_ref="d.t", dataset_load_column="c", destination_table_ref="d.o",
        )
    assert task.retries == 0


def test_dag_and_group_default_args_override_the_sharded_groups_retry_defaults_too():
    from airflow.sdk import DAG, TaskGroup

    from airflow_provider_somlier.operators.offline import DEFAULT_RETRIES, DEFAULT_RETRY_DELAY
    from airflow_provider_somlier.operators.sharded import sharded_offline

    args = {"shards": 2, "model_ref": "m/1", "dataset_ref": "d.t", "dataset_load_column": "c"}
    with DAG("somlier_sharded_defaults", schedule=None,
             default_args={"retries": 5, "retry_delay": dt.timedelta(seconds=3)}) as dag:
        sharded_offline("by_dag", destination_table_ref="d.a", **args)
        with TaskGroup("outer", default_args={"retries": 1}):
            sharded_offline("by_group", destination_table_ref="d.b", **args)
    with DAG("somlier_sharded_no_defaults", schedule=None) as plain:
        sharded_offline("predict", destination_table_ref="d.c", **args)
    for name in ("plan", "score", "commit"):  # the score task is mapped: its retries are the partial's
        assert (dag.get_task(f"by_dag.{name}").retries, dag.get_task(f"by_dag.{name}").retry_delay) == (
            5, dt.timedelta(seconds=3))
        assert dag.get_task(f"outer.by_group.{name}").retries == 1
        assert (plain.get_task(f"predict.{name}").retries, plain.get_task(f"predict.{name}").retry_delay) == (
            DEFAULT_RETRIES, DEFAULT_RETRY_DELAY)


def test_an_input_error_fails_at_once_without_using_its_retries(airflow_db, registry, features_table, destination):
    run, ti = _run(
        "somlier_input_error_no_retry", model_ref="diabetes-ridge/99", features_table=features_table,
        destination=destination, gcp_conn_id="google_cloud_default",
    )
    assert run.state == "failed"
    assert (ti.state, ti.try_number) == ("failed", 1)


def test_an_unreachable_warehouse_is_retried_until_the_retries_run_out(airflow_db, registry, features_table, destination, monkeypatch):
    extras = {"project": "somlier-local", "is_anonymous": True, "retry_deadline_seconds": 1,
              "api_endpoint": f"http://127.0.0.1:{free_port()}", "storage_read_endpoint": f"grpc://127.0.0.1:{free_port()}"}
    monkeypatch.setenv("AIRFLOW_CONN_BQ_RETRY_DOWN", json.dumps({"conn_type": "google_cloud_platform", "extra": extras}))
    run, ti = _run(
        "somlier_outage_retried", model_ref="diabetes-ridge/1", features_table=features_table,
        destination=destination, gcp_conn_id="bq_retry_down",
    )
    assert run.state == "failed"
    assert (ti.state, ti.try_number) == ("failed", 3)  # the first try and both retries


def test_an_unreachable_registry_is_retried_until_the_retries_run_out(airflow_db, registry, features_table, destination, monkeypatch):
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_RETRY_DOWN", json.dumps({"conn_type": "mlflow", "host": down}))
    # MLflow's HTTP client retries for minutes by default; these knobs are MLflow's own.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    run, ti = _run(
        "somlier_registry_outage_retried", model_ref="diabetes-ridge/1", features_table=features_table,
        destination=destination, gcp_conn_id="google_cloud_default", mlflow_conn_id="mlflow_retry_down",
    )
    assert run.state == "failed"
    assert (ti.state, ti.try_number) == ("failed", 3)
