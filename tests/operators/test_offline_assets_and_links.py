"""What a run leaves in Airflow besides the rows: an asset event for the table and extra links."""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request

import pytest

from tests.helpers import asset_events, load_dag_file, offline_dag_source

UTC = dt.timezone.utc

def run_dag(dag_id: str, features_table: str, destination_ref: str, model_ref: str = "diabetes-ridge@champion",
            mlflow_conn_id: str = "mlflow_default"):
    source = offline_dag_source(
        dag_id, model_ref=model_ref, dataset_ref=features_table, dataset_load_column="load_date",
        destination_table_ref=destination_ref, mlflow_conn_id=mlflow_conn_id,
    )
    dag = load_dag_file(source, dag_id)
    run = dag.test(logical_date=dt.datetime(2026, 11, 21, 0, 0, tzinfo=UTC))
    assert run.state == "success"
    return run


def extra_links(dag_id: str, run_id: str) -> dict[str, str]:
    """The links as the API server reads them: the URL each link stored in XCom when the task finished."""
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.serialization.definitions.operatorlink import XComOperatorLink

    from airflow_provider_somlier.links import BigQueryTableLink, MLflowModelVersionLink

    ti_key = TaskInstanceKey(dag_id=dag_id, task_id="predict", run_id=run_id, try_number=1)
    return {
        link.name: XComOperatorLink(name=link.name, xcom_key=link.xcom_key).get_link(None, ti_key=ti_key)
        for link in (MLflowModelVersionLink(), BigQueryTableLink())
    }


def test_a_run_emits_an_event_for_the_destination_table_with_day_model_and_rows(
    airflow_db, registry, features_table, destination, emulator
):
    dataset_table = destination.split(".", 1)[1]  # as a DAG usually writes it: the project comes from the connection
    run = run_dag("somlier_asset_event", features_table, dataset_table)
    uri = "bigquery://{}/{}".format(emulator.project, dataset_table.replace(".", "/"))

    (event,) = asset_events(uri, run.run_id)
    quality = event.pop("quality")
    assert event == {"target_date": "2026-11-20", "model_name": "diabetes-ridge",
                     "model_version": registry["v1"].version, "rows_written": 50}
    # the day's profile summary travels with the event: rows, NULLs per column, the checks' verdict
    assert (quality["rows"], quality["nulls"]["prediction"], quality["verdict"]) == (50, 0, "pass")
    assert set(quality["skipped"]) == {"max_psi", "max_mean_shift", "row_count_factor"}  # the first day has no baseline


def test_links_are_absent_for_a_sqlite_registry_and_the_emulator(airflow_db, registry, features_table, destination):
    run = run_dag("somlier_links_local", features_table, destination)

    assert extra_links("somlier_links_local", run.run_id) == {"MLflow model version": "", "BigQuery table": ""}


@pytest.fixture(scope="module")
def served_registry(mlflow_server):
    from airflow_provider_somlier.devtools.sample_model import train_and_register

    model = train_and_register(mlflow_server, "linked-ridge", experiment="link-tests")
    os.environ["AIRFLOW_CONN_MLFLOW_SERVED"] = json.dumps({"conn_type": "mlflow", "host": mlflow_server})
    return mlflow_server, model


def test_the_mlflow_link_opens_the_version_the_run_used_on_the_tracking_server(
    airflow_db, served_registry, features_table, destination
):
    url, model = served_registry
    run = run_dag("somlier_links_served", features_table, destination, "linked-ridge/1", mlflow_conn_id="mlflow_served")

    link = extra_links("somlier_links_served", run.run_id)["MLflow model version"]

    assert link == f"{url}/#/models/linked-ridge/versions/{model.version}"
    with urllib.request.urlopen(link, timeout=10) as page:
        assert page.status == 200
