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
