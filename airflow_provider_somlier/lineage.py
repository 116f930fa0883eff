"""OpenLineage for a SoMLier run: the feature table, the model between, the predictions table.

Lineage tools that read the Google operators' events see BigQuery tables named
``project.dataset.table`` in the ``bigquery`` namespace; a SoMLier run reports its source
and destination the same way, with their schemas, so the graph has no gap where the
model sits. Passthrough columns are mapped one to one (IDENTITY); each prediction column
is derived from the feature columns by the model (a DIRECT TRANSFORMATION). The model
itself (name, version, run id, artifact URI) travels as the ``somlier_model`` run facet.

The operator keeps a :class:`RunLineage` of what it resolved (from its summary and feature
plan); the OpenLineage provider's listener asks for :func:`operator_lineage` after a
successful run, which reads both tables' schemas then, as the Google operators do.
OpenLineage is imported only then, so the provider stays optional (``pip install
airflow-provider-somlier[openlineage]``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BIGQUERY_NAMESPACE = "bigquery"  # the Google provider's namespace for BigQuery tables
MODEL_FACET_NAME = "somlier_model"
QUALITY_FACET_NAME = "somlier_quality"
# The facets' JSON schemas ship in the package (schemas/<Facet>.json); events name each by
# its address in the project's repository at the installed version, as the OpenLineage
# spec asks of a custom facet's ``_schemaURL``.
SCHEMAS_FOLDER = "airflow_provider_somlier/schemas"
MODEL_FACET_SCHEMA_FILE = f"{SCHEMAS_FOLDER}/SomlierModelRunFacet.json"
QUALITY_FACET_SCHEMA_FILE = f"{SCHEMAS_FOLDER}/SomlierQualityRunFacet.json"
REPOSITORY_RAW = "https://raw.githubusercontent.com/somlier/airflow-provider-somlier"


@dataclass(frozen=True)
class RunLineage:
    """What one run read, with which model, and what it wrote: enough to describe it afterwards."""

    source: str  # project.dataset.table
    destination: str | None  # None for a step that reads and writes no day (a shard's plan or score)
    features: Sequence[str]
    passthrough: Sequence[str]
    model_name: str
    model_version: str
    model_run_id: str
    gcp_conn_id: str
    location: str | None = None
    quality: Mapping[str, Any] | None = None  # the day's quality summary (quality/day_gate.py)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.model_version}"


def run_lineage(
    summary: Mapping[str, Any],
    features: Sequence[str],
    passthrough: Sequence[str],
    gcp_conn_id: str,
    location: str | None = None,
) -> RunLineage:
    """Collect a :class:`RunLineage` from a written day's summary and its columns (no network call)."""
    return RunLineage(
        source=summary["source"],
        destination=summary["destination"],
        features=tuple(features),
        passthrough=tuple(passthrough),
        model_name=summary["model_name"],
        model_version=str(summary["model_version"]),
        model_run_id=summary["model_run_id"],
        gcp_conn_id=gcp_conn_id,
        location=location,
        quality=summary.get("quality"),
    )


def table_columns(run: RunLineage) -> tuple[dict[str, str], dict[str, str]]:
    """Column name → BigQuery type of the source and of the destination, as they are now.

    Read when OpenLineage asks (after the run), through the hook and its deadlines; a table
    that cannot be read yields no columns, so its schema facet is left out rather than the
    whole event lost.
    """
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.refs import TableRef

    hook = SomlierBigQueryHook(gcp_conn_id=run.gcp_conn_id, location=run.location)

    def columns(table_id: str | None) -> dict[str, str]:
        if table_id is None:
            return {}
        try:
            table = hook.get_table_or_none(TableRef(*table_id.split(".")))
        except Exception:  # noqa: BLE001 - lineage is best effort; the run has succeeded
            return {}
        return {field.name: field.field_type for field in table.schema} if table is not None else {}

    return columns(run.source), columns(run.destination)


@functools.cache
def _model_facet_class() -> type:
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class SomlierModelRunFacet(RunFacet):
        """The MLflow registry model version a run scored with."""

        name: str
        version: str
        runId: str  # noqa: N815 - OpenLineage's field spelling
        uri: str

        @staticmethod
        def _get_schema() -> str:
            return facet_schema_url(MODEL_FACET_SCHEMA_FILE)

    return SomlierModelRunFacet


@functools.cache
def facet_schema_url(schema_file: str) -> str:
    """Where a SoMLier facet's schema lives: the shipped file, at this provider's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tag = f"v{version('airflow-provider-somlier')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        tag = "main"
    name = schema_file.rsplit("/", 1)[-1].removesuffix(".json")
    return f"{REPOSITORY_RAW}/{tag}/{schema_file}#/$defs/{name}"


def model_facet(run: RunLineage) -> Any:
    """The ``somlier_model`` run facet."""
    return _model_facet_class()(name=run.model_name, version=run.model_version, runId=run.model_run_id, uri=run.model_uri)


def prediction_columns(run: RunLineage, destination_columns: Mapping[str, str]) -> list[str]:
    """Destination columns the model produced: neither passthrough nor SoMLier's lineage columns."""
    from airflow_provider_somlier.output import LINEAGE_COLUMNS

    return [c for c in destination_columns if c not in run.passthrough and c not in LINEAGE_COLUMNS]


def operator_lineage(run: RunLineage | None, *, read_schemas: bool = True) -> Any:
    """The ``OperatorLineage`` of a finished run: what it read, what it wrote, with which model.

    Empty when the run did nothing; inputs and the model alone for a step that reads the
    day but does not write it (a shard's plan and score tasks). ``read_schemas=False``
    makes no network call (schemas left out): for a failed task, whose warehouse may be the
    reason it failed, so that reporting it never holds the worker slot.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import column_lineage_dataset, schema_dataset

    if run is None:
        return OperatorLineage()
    source_columns, destination_columns = table_columns(run) if read_schemas else ({}, {})

    def schema(columns: Mapping[str, str]) -> dict[str, Any]:
        if not columns:
            return {}
        return {"schema": schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns.items()]
        )}

    def inputs(columns: Sequence[str], subtype: str, description: str) -> list[Any]:
        step = column_lineage_dataset.Transformation(type="DIRECT", subtype=subtype, description=description)
        return [
            column_lineage_dataset.InputField(BIGQUERY_NAMESPACE, run.source, column, transformations=[step])
            for column in columns
        ]

    inputs_read = [Dataset(BIGQUERY_NAMESPACE, run.source, facets=schema(source_columns))]
    run_facets = {MODEL_FACET_NAME: model_facet(run)}
    if run.destination is None:
        return OperatorLineage(inputs=inputs_read, run_facets=run_facets)
    model = f"{run.model_name} version {run.model_version}"
    fields = {
        column: column_lineage_dataset.Fields(
            inputFields=inputs([column], "IDENTITY", "copied unchanged"),
            transformationType="IDENTITY",
            transformationDescription="copied unchanged",
        )
        for column in run.passthrough
    }
    for column in prediction_columns(run, destination_columns):
        fields[column] = column_lineage_dataset.Fields(
            inputFields=inputs(run.features, "TRANSFORMATION", f"predicted by {model}"),
            transformationType="",
            transformationDescription=f"predicted by {model}",
        )
    return OperatorLineage(
        inputs=inputs_read,
        outputs=[
            Dataset(
                BIGQUERY_NAMESPACE,
                run.destination,
                facets={
                    **schema(destination_columns),
                    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields),
                },
            )
        ],
        run_facets={**run_facets, **quality_facets(run)},
    )


@functools.cache
def _quality_facet_class() -> type:
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class SomlierQualityRunFacet(RunFacet):
        """The scored day's profile summary and its quality checks' verdict."""

        rows: int
        nulls: dict
        verdict: str
        failures: list
        skipped: dict
        baseline: str | None

        @staticmethod
        def _get_schema() -> str:
            return facet_schema_url(QUALITY_FACET_SCHEMA_FILE)

    return SomlierQualityRunFacet


def quality_facets(run: RunLineage) -> dict[str, Any]:
    """The ``somlier_quality`` run facet, when the run profiled its day."""
    quality = run.quality
    if not quality or "verdict" not in quality:
        return {}
    return {QUALITY_FACET_NAME: _quality_facet_class()(
        rows=quality["rows"], nulls=dict(quality["nulls"]), verdict=quality["verdict"],
        failures=list(quality["failures"]), skipped=dict(quality["skipped"]), baseline=quality["baseline"],
    )}
