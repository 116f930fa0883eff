"""OpenLineage facets of a finished run: tables with schemas, column mapping, the model as a run facet."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from airflow_provider_somlier.devtools.sample_model import FEATURES
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import run_context

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def lineage(registry, features_table, emulator, bq_client):
    """The facets of one finished run (all tests here read the same run)."""
    bq_client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    destination = f"{emulator.project}.predictions.openlineage_{os.getpid()}"
    op = MLOpsOfflineOperator(
        task_id="predict", model_ref="diabetes-ridge@champion", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=destination, passthrough_columns=["row_id"],
    )
    op.execute(run_context(dt.datetime(2026, 11, 21, 0, 0, tzinfo=UTC)))
    return op.get_openlineage_facets_on_complete(None), destination


def test_lineage_reports_source_and_destination_tables_with_their_schemas(lineage, features_table, bq_client):
    lineage, destination = lineage

    [source] = lineage.inputs
    [output] = lineage.outputs
    assert (source.namespace, source.name) == ("bigquery", features_table)
    assert (output.namespace, output.name) == ("bigquery", destination)
    assert {f.name: f.type for f in source.facets["schema"].fields} == {
        f.name: f.field_type for f in bq_client.get_table(features_table).schema
    }
    assert {f.name: f.type for f in output.facets["schema"].fields} == {
        f.name: f.field_type for f in bq_client.get_table(destination).schema
    }


def test_lineage_maps_passthrough_columns_one_to_one_and_predictions_to_the_features(lineage, features_table):
    lineage, _ = lineage

    columns = lineage.outputs[0].facets["columnLineage"].fields
    assert set(columns) == {"row_id", "prediction"}
    assert columns["row_id"].transformationType == "IDENTITY"
    assert [(f.name, f.field) for f in columns["row_id"].inputFields] == [(features_table, "row_id")]
    assert [f.field for f in columns["prediction"].inputFields] == list(FEATURES)


def test_lineage_carries_the_resolved_model_version_as_a_run_facet(lineage, registry):
    lineage, _ = lineage

    model = lineage.run_facets["somlier_model"]
    assert (model.name, model.version, model.runId, model.uri) == (
        "diabetes-ridge", registry["v1"].version, registry["v1"].run_id, f"models:/diabetes-ridge/{registry['v1'].version}"
    )


def test_an_operator_that_has_not_run_reports_no_lineage():
    op = MLOpsOfflineOperator(
        task_id="predict", model_ref="m/1", dataset_ref="d.t", dataset_load_column="day", destination_table_ref="d.p"
    )

    lineage = op.get_openlineage_facets_on_complete(None)

    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})


def test_a_table_that_cannot_be_read_is_reported_without_its_schema(emulator):
    from airflow_provider_somlier.lineage import RunLineage, operator_lineage

    run = RunLineage(
        source=f"{emulator.project}.missing.features", destination=f"{emulator.project}.missing.predictions",
        features=("age",), passthrough=("row_id",), model_name="m", model_version="4", model_run_id="r",
        gcp_conn_id="google_cloud_default",
    )

    lineage = operator_lineage(run)

    assert [d.name for d in lineage.inputs + lineage.outputs] == [run.source, run.destination]
    assert "schema" not in lineage.inputs[0].facets and "schema" not in lineage.outputs[0].facets
    assert lineage.run_facets["somlier_model"].version == "4"


def test_the_model_facet_names_and_validates_against_the_schema_the_package_ships(lineage):
    from pathlib import Path

    import jsonschema
    from openlineage.client.serde import Serde
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    import airflow_provider_somlier
    from airflow_provider_somlier.lineage import MODEL_FACET_SCHEMA_FILE

    lineage, _ = lineage
    facet = json.loads(Serde.to_json(lineage.run_facets["somlier_model"]))
    address, fragment = facet["_schemaURL"].split("#")
    assert address.endswith("/" + MODEL_FACET_SCHEMA_FILE) and fragment == "/$defs/SomlierModelRunFacet"
    shipped = Path(airflow_provider_somlier.__file__).parent.parent / MODEL_FACET_SCHEMA_FILE
    schema = json.loads(shipped.read_text())
    # OpenLineage's base RunFacet, as its spec defines it, served locally (the tests reach no network).
    run_facet = {"$defs": {"RunFacet": {
        "type": "object", "required": ["_producer", "_schemaURL"],
        "properties": {"_producer": {"type": "string", "format": "uri"}, "_schemaURL": {"type": "string", "format": "uri"}},
    }}}
    registry = Registry().with_resource(
        "https://openlineage.io/spec/2-0-2/OpenLineage.json", DRAFT202012.create_resource(run_facet)
    )
    jsonschema.Draft202012Validator(schema, registry=registry).validate({"somlier_model": facet})
    with pytest.raises(jsonschema.ValidationError, match="'runId' is a required property"):
        jsonschema.Draft202012Validator(schema, registry=registry).validate(
            {"somlier_model": {k: v for k, v in facet.items() if k != "runId"}}
        )
