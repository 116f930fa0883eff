"""Extra-link URLs: a web page when there is one, nothing for local registries and the emulator."""

from __future__ import annotations

from airflow_provider_somlier.links import model_version_url, table_console_url


def test_the_model_version_url_is_the_mlflow_ui_page_of_that_version():
    assert model_version_url("http://mlflow:5000/", "house price", "3") == "http://mlflow:5000/#/models/house%20price/versions/3"


def test_a_registry_that_is_no_server_has_no_model_version_url():
    assert model_version_url("sqlite:////tmp/mlflow.db", "m", "1") == ""
    assert model_version_url("file:///tmp/mlruns", "m", "1") == ""


def test_the_table_url_is_the_bigquery_console_page_of_the_table():
    assert table_console_url("proj.preds.day_scores", None) == (
        "https://console.cloud.google.com/bigquery?referrer=search&project=proj&d=preds&p=proj&page=table&t=day_scores"
    )


def test_an_emulator_table_has_no_console_url():
    assert table_console_url("somlier-local.preds.t", "http://127.0.0.1:9050") == ""


def test_a_failed_task_s_links_are_empty_without_asking_for_an_xcom():
    """Airflow resolves links in the worker when the task ends, failed or not; the run in hand has the answer."""
    from types import SimpleNamespace

    from airflow_provider_somlier.links import BigQueryTableLink, MLflowModelVersionLink

    for run in (None, SimpleNamespace(summary=None)):  # failed before or after execute() made its run
        failed = SimpleNamespace(_run=run, mlflow_conn_id="mlflow_default", gcp_conn_id="google_cloud_default")
        for link in (MLflowModelVersionLink(), BigQueryTableLink()):
            assert link.get_link(failed, ti_key=None) == ""  # ti_key=None: an XCom lookup would raise
