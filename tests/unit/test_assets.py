"""The predictions asset is the table as Airflow's Google provider names it."""

from __future__ import annotations

from airflow.providers.google.assets.bigquery import create_asset

from airflow_provider_somlier.assets import predictions_alias, table_asset


def test_the_table_asset_has_the_uri_the_google_provider_gives_the_same_table():
    assert table_asset("proj", "preds", "scores").uri == create_asset(project_id="proj", dataset_id="preds", table_id="scores").uri


def test_the_alias_is_named_after_the_destination_ref_as_written_in_the_dag():
    assert predictions_alias("predictions.diabetes_ridge").name == "somlier-predictions:predictions.diabetes_ridge"


def test_a_generated_dag_declares_the_alias_the_operator_emits_through():
    import importlib.util
    from pathlib import Path

    golden = Path(__file__).parents[1] / "generate" / "golden" / "offline_v2.py"
    spec = importlib.util.spec_from_file_location("somlier_golden_offline_v2", golden)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert module.dag.get_task("predict").outlets == [predictions_alias("temp_serena.boston_house_pricing_result")]
