"""The shape of what a run writes: passthrough ids, predictions, lineage; and of the staging file.

This module owns the output schema: the destination's columns, which of them the staging
Parquet file holds (:func:`staged_fields`) and as which Arrow types.

Every destination row records which model version made it, for which target day,
when, and from which Airflow run, so a prediction can be traced back and a bad
model version's rows found and replaced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.errors import (
    ColumnCollisionError,
    DestinationSchemaError,
    ModelPredictionError,
    UnsupportedColumnTypeError,
)
from airflow_provider_somlier.features import normalize_bq_type

if TYPE_CHECKING:
    import datetime as dt

    import pyarrow as pa
    from google.cloud import bigquery

TARGET_DATE_COLUMN = "target_date"
PREDICTION_COLUMN = "prediction"
# name → BigQuery type, in the order they are written.
LINEAGE_COLUMNS: dict[str, str] = {
    "model_name": "STRING",
    "model_version": "INT64",
    "model_run_id": "STRING",
    TARGET_DATE_COLUMN: "DATE",
    "predicted_at": "TIMESTAMP",
    "airflow_dag_id": "STRING",
    "airflow_run_id": "STRING",
}


@dataclass(frozen=True)
class Lineage:
    model_name: str
    model_version: int
    model_run_id: str
    target_date: dt.date
    predicted_at: dt.datetime
    airflow_dag_id: str
    airflow_run_id: str


def check_passthrough(passthrough: Sequence[str]) -> None:
    """Passthrough ids may not shadow prediction or lineage columns, nor each other.

    BigQuery column names are case-insensitive, so ``Prediction`` and ``TARGET_DATE``
    collide as surely as their lower-case forms do.
    """
    reserved = {name.lower() for name in LINEAGE_COLUMNS} | {PREDICTION_COLUMN}
    clashes = [
        c for c in passthrough
        if c.lower() in reserved or c.lower().startswith(f"{PREDICTION_COLUMN}_")
    ]
    if clashes:
        raise ColumnCollisionError(
            f"passthrough column(s) {', '.join(map(repr, clashes))} collide with output columns "
            f"({PREDICTION_COLUMN}, {PREDICTION_COLUMN}_*, {', '.join(LINEAGE_COLUMNS)}; "
            "names are compared without letter case, as BigQuery does); rename them in the source or leave them out"
        )
    seen: dict[str, str] = {}
    for column in passthrough:
        if column.lower() in seen:
            raise ColumnCollisionError(
                f"passthrough column {column!r} repeats {seen[column.lower()]!r} "
                "(BigQuery column names ignore letter case); list each column once"
            )
        seen[column.lower()] = column


# BigQuery types a passthrough column can be staged as (Parquet) and loaded back from.
_STAGING_ARROW_TYPES = {
    "STRING": "string",
    "INT64": "int64",
    "FLOAT64": "float64",
    "BOOL": "bool_",
    "DATE": "date32",
    "TIMESTAMP": ("timestamp", "us", "UTC"),
    "DATETIME": ("timestamp", "us"),
    "NUMERIC": ("decimal128", 38, 9),
    "BYTES": "binary",
}
STAGEABLE_TYPES = tuple(_STAGING_ARROW_TYPES)


def check_passthrough_types(passthrough_types: Mapping[str, str], *, source: str) -> None:
    """Refuse, before reading a row, passthrough columns the staging file cannot carry.

    ``passthrough_types`` maps column → BigQuery type, ``ARRAY<…>`` for REPEATED
    columns. TIME, BIGNUMERIC, JSON, GEOGRAPHY, RECORD, INTERVAL, RANGE and arrays
    would be lost or mangled on the way through Parquet; ids are plain values.
    """
    odd = {c: t for c, t in passthrough_types.items() if normalize_bq_type(t) not in _STAGING_ARROW_TYPES}
    if odd:
        raise UnsupportedColumnTypeError(
            f"passthrough column(s) {', '.join(f'{c!r} ({t})' for c, t in odd.items())} of {source} "
            f"cannot be carried to the destination; passthrough columns must be one of "
            f"{', '.join(STAGEABLE_TYPES)} (cast them in a view, or leave them out)"
        )


# A prediction column's name as BigQuery's classic rule has it (flexible names are not loaded from
# Parquet or read through the Storage Read API everywhere; downstream SQL need not quote these).
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")


def prediction_columns(raw: Any, expected_rows: int, index: Any = None) -> dict[str, pa.Array]:
    """Turn whatever ``pyfunc.predict`` returned into named Arrow columns.

    1-D output → ``prediction``; 2-D output of k columns → ``prediction_0..k-1``;
    a DataFrame → ``prediction`` for one column, else ``prediction_<column>``. Names
    BigQuery would refuse or fold together (letter case) are refused by name, and a
    column of Python objects becomes one Arrow type with its ``None``/NaN as NULL — or
    is refused, naming the column, when its values are of several types.

    ``index`` is the index of the DataFrame the model was given: a Series or DataFrame
    answered with the same row labels in another order (``pd.concat`` of a ``groupby``,
    a sort) is put back in the input's order, as pandas would align it; taken by
    position, its predictions would land on other rows' ids.
    """
    import numpy as np
    import pandas as pd

    if isinstance(raw, (pd.Series, pd.DataFrame)) and index is not None:
        raw = _in_input_order(raw, index)
    if isinstance(raw, pd.Series):
        columns = {PREDICTION_COLUMN: raw.to_numpy()}
    elif isinstance(raw, pd.DataFrame):
        if raw.shape[1] == 1:
            columns = {PREDICTION_COLUMN: raw.iloc[:, 0].to_numpy()}
        else:
            names = [f"{PREDICTION_COLUMN}_{name}" for name in raw.columns]
            _check_prediction_names(names, [str(name) for name in raw.columns])
            columns = {name: raw.iloc[:, i].to_numpy() for i, name in enumerate(names)}
    else:
        array = np.asarray(raw)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 1:
            columns = {PREDICTION_COLUMN: array}
        elif array.ndim == 2:
            columns = {f"{PREDICTION_COLUMN}_{i}": array[:, i] for i in range(array.shape[1])}
        else:
            raise ModelPredictionError(f"model returned an array of shape {array.shape}; expected 1 or 2 dimensions")
    for name, values in columns.items():
        if len(values) != expected_rows:
            raise ModelPredictionError(
                f"model returned {len(values)} prediction(s) for {expected_rows} input row(s); "
                "expected exactly one per row (nothing was written)"
            )
    return {name: _arrow_column(name, values) for name, values in columns.items()}


def _in_input_order(raw: Any, index: Any) -> Any:
    """``raw`` reordered to ``index`` when its labels are the input's in another order; else as it is."""
    if len(raw.index) != len(index) or raw.index.equals(index):
        return raw
    if raw.index.is_unique and index.is_unique and raw.index.sort_values().equals(index.sort_values()):
        return raw.reindex(index)
    return raw  # new labels (ids, a reset index): by position, as the model wrote them


def _check_prediction_names(names: list[str], returned: list[str]) -> None:
    odd = [f"{column!r} (→ {name})" for name, column in zip(names, returned) if not _COLUMN_NAME.fullmatch(name)]
    if odd:
        raise ModelPredictionError(
            f"model returned column(s) {', '.join(odd)} whose destination names BigQuery would refuse; "
            "expected letters, digits and underscores, at most 300 characters — rename the columns the "
            "model's predict returns (nothing was written)"
        )
    seen: dict[str, str] = {}
    for name, column in zip(names, returned):
        if name.lower() in seen:
            raise ModelPredictionError(
                f"model returned columns {seen[name.lower()]!r} and {column!r}, which BigQuery takes for the "
                "same column (names ignore letter case); expected distinct names (nothing was written)"
            )
        seen[name.lower()] = column


def _arrow_column(name: str, values: Any) -> pa.Array:
    import pyarrow as pa

    if getattr(values, "dtype", None) != object:
        return pa.array(values)
    try:  # from_pandas: None and NaN among objects (a categorical's missing labels) are NULL
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        raise ModelPredictionError(
            f"model returned values of several types in {name} ({', '.join(kinds)}): {exc}; expected one type "
            "per column (nothing was written)"
        ) from exc


_ARROW_TO_BQ = (
    ("is_boolean", "BOOL"),
    ("is_integer", "INT64"),
    ("is_floating", "FLOAT64"),
    ("is_string", "STRING"),
    ("is_large_string", "STRING"),
    ("is_date", "DATE"),
    ("is_decimal", "NUMERIC"),
    ("is_binary", "BYTES"),
)


def bq_type_of(arrow_type: pa.DataType) -> str:
    import pyarrow.types as pat

    if pat.is_timestamp(arrow_type):
        return "TIMESTAMP" if arrow_type.tz else "DATETIME"
    for predicate, bq_type in _ARROW_TO_BQ:
        if getattr(pat, predicate)(arrow_type):
            return bq_type
    raise ModelPredictionError(f"model output type {arrow_type} has no BigQuery column type")


def _prediction_type(name: str, arrow_type: pa.DataType) -> str:
    import pyarrow.types as pat

    if pat.is_null(arrow_type):  # every value of the first chunk was None: no type to create the column with
        raise ModelPredictionError(
            f"model returned only missing values in {name} for the first chunk, so its type is unknown; "
            "expected values of one type, NULL where missing (nothing was written)"
        )
    try:
        return bq_type_of(arrow_type)
    except ModelPredictionError as exc:
        raise ModelPredictionError(f"{name}: {exc}") from exc


def output_schema(
    passthrough_types: Mapping[str, str], predictions: Mapping[str, pa.DataType]
) -> list[bigquery.SchemaField]:
    """Destination schema: passthrough ids, predictions, then lineage (lineage always REQUIRED-like)."""
    from google.cloud import bigquery

    fields = [bigquery.SchemaField(name, normalize_bq_type(t)) for name, t in passthrough_types.items()]
    fields += [bigquery.SchemaField(name, _prediction_type(name, t)) for name, t in predictions.items()]
    fields += [bigquery.SchemaField(name, t) for name, t in LINEAGE_COLUMNS.items()]
    return fields


def arrow_schema(schema: Sequence[bigquery.SchemaField]) -> pa.Schema:
    """The Parquet staging schema matching a BigQuery schema."""
    import pyarrow as pa

    def arrow_type(bq_type: str) -> pa.DataType:
        spec = _STAGING_ARROW_TYPES[normalize_bq_type(bq_type)]
        name, *args = spec if isinstance(spec, tuple) else (spec,)
        return getattr(pa, name)(*args)

    return pa.schema([pa.field(f.name, arrow_type(f.field_type)) for f in schema])


def staged_fields(schema: Sequence[bigquery.SchemaField]) -> list[bigquery.SchemaField]:
    """The columns the staging file holds: all but the lineage, which the replace writes as constants."""
    return [field for field in schema if field.name not in LINEAGE_COLUMNS]


def staging_arrow_schema(schema: Sequence[bigquery.SchemaField]) -> pa.Schema:
    """The staging Parquet file's schema for a destination schema: its staged fields, as Arrow types."""
    return arrow_schema(staged_fields(schema))


def check_destination(existing: Sequence[bigquery.SchemaField], expected: Sequence[bigquery.SchemaField], table: str) -> None:
    """An existing destination must hold every output column with the same type.

    Extra NULLABLE columns are allowed (they stay NULL); REQUIRED extras would make
    every insert fail, so they are refused here instead.
    """
    have = {f.name: f for f in existing}
    problems = []
    for field in expected:
        current = have.get(field.name)
        if current is None:
            problems.append(f"missing column {field.name} {field.field_type}")
        elif normalize_bq_type(current.field_type) != normalize_bq_type(field.field_type):
            problems.append(f"column {field.name} is {current.field_type}, expected {field.field_type}")
        elif current.mode == "REPEATED":
            problems.append(f"column {field.name} is REPEATED, expected a single value")
    wanted = {f.name for f in expected}
    problems += [f"extra REQUIRED column {f.name}" for f in existing if f.name not in wanted and f.mode == "REQUIRED"]
    if problems:
        raise DestinationSchemaError(
            f"destination {table} has an incompatible schema: {'; '.join(problems)}. "
            "Write to a new table, or migrate this one to the expected columns"
        )


def lineage_values(lineage: Lineage) -> dict[str, Any]:
    """The lineage columns' values, by column name: the same for every row a task writes.

    They are not staged with the predictions: the replace transaction writes them as
    constants, so the staging file and its load carry only what differs per row.
    """
    return {
        "model_name": lineage.model_name,
        "model_version": lineage.model_version,
        "model_run_id": lineage.model_run_id,
        TARGET_DATE_COLUMN: lineage.target_date,
        "predicted_at": lineage.predicted_at,
        "airflow_dag_id": lineage.airflow_dag_id,
        "airflow_run_id": lineage.airflow_run_id,
    }
