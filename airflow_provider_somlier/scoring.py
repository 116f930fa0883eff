"""Score a stream of feature batches and stage the per-row output as one Parquet file.

Memory holds an input page or two (the reader fetches one ahead) and one chunk of
predictions at a time; everything else is on local disk, so a day of ten million
rows costs what a day of ten thousand does. The file holds the passthrough ids and
the predictions; the lineage, the same on every row, is stamped by the transaction.
Nothing here talks to BigQuery: the file is handed to the hook, which swaps it into
the destination in one transaction, so a failure anywhere in this module leaves the
destination untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.errors import ModelPredictionError, SomlierError
from airflow_provider_somlier.features import FeaturePlan, model_input, model_matrix
from airflow_provider_somlier.output import Lineage, output_schema, prediction_columns, staging_arrow_schema
from airflow_provider_somlier.phases import PhaseClock

if TYPE_CHECKING:
    import pyarrow as pa
    from google.cloud import bigquery

DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class StagedPredictions:
    path: str
    rows_read: int
    schema: list[bigquery.SchemaField] | None  # None when no row was read
    profile: Any = None  # the rows' DayProfile (quality/profile.py) when a profiler was given


def _chunks(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterable[pa.RecordBatch]:
    for batch in batches:
        for offset in range(0, batch.num_rows, chunk_rows):
            yield batch.slice(offset, chunk_rows)


def score_to_parquet(
    batches: Iterable[pa.RecordBatch],
    model: Any,
    plan: FeaturePlan,
    lineage: Lineage,
    passthrough_types: Mapping[str, str],
    path: str,
    *,
    on_schema: Callable[[list[bigquery.SchemaField]], None],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    profiler: Any = None,
    clock: PhaseClock | None = None,
) -> StagedPredictions:
    """Predict chunk by chunk and append the output rows to a Parquet file at ``path``.

    ``on_schema`` is called once, with the output schema, as soon as the first chunk
    has been scored: the caller checks the destination there, before more work is done.
    ``profiler`` (a ``quality.day_gate.ScoringProfiler``) sees every chunk's features and
    predictions, so the day's profile costs no second read. ``clock`` is told the seconds
    spent waiting for pages (``read``), predicting, profiling and staging.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = f"target day {lineage.target_date.isoformat()}"
    clock = clock or PhaseClock()
    writer: pq.ParquetWriter | None = None
    schema: list[bigquery.SchemaField] | None = None
    staging_schema: pa.Schema | None = None
    rows_read = 0
    # A plain linear model takes the checked matrix (direct_sklearn.LinearPredictor); others a DataFrame.
    to_features = model_matrix if getattr(model, "takes_matrix", False) else model_input
    try:
        for chunk in _chunks(clock.waiting("read", batches), chunk_rows):
            if chunk.num_rows == 0:
                continue
            rows_read += chunk.num_rows
            with clock.timing("predict"):
                features = to_features(chunk, plan, target=target)
                try:
                    raw = model.predict(features)
                except SomlierError:
                    raise
                except Exception as exc:  # the model's own failure, whatever its type
                    raise ModelPredictionError(
                        f"model {lineage.model_name} version {lineage.model_version} raised on {target} "
                        f"after {rows_read - chunk.num_rows} row(s): {type(exc).__name__}: {exc} (nothing was written)"
                    ) from exc
                predictions = prediction_columns(raw, chunk.num_rows, getattr(features, "index", None))
            if schema is None:
                schema = output_schema(passthrough_types, {n: a.type for n, a in predictions.items()})
                on_schema(schema)
                staging_schema = staging_arrow_schema(schema)
                # Ids and predictions rarely repeat: trying dictionary encoding on them costs
                # more than the rest of the write, and no reader skips pages by statistics.
                writer = pq.ParquetWriter(path, staging_schema, use_dictionary=False, write_statistics=False)
            if profiler is not None:
                with clock.timing("profile"):
                    profiler.add(chunk, predictions)
            with clock.timing("stage"):
                columns = {name: chunk.column(name) for name in plan.passthrough}
                columns.update(predictions)
                try:
                    table = pa.table(columns).cast(staging_schema)
                except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
                    raise ModelPredictionError(
                        f"model output on {target} changed type between chunks: {exc} (nothing was written)"
                    ) from exc
                writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    profile = profiler.result() if profiler is not None else None
    return StagedPredictions(path=path, rows_read=rows_read, schema=schema, profile=profile)


def write_empty_parquet(schema: list[bigquery.SchemaField], path: str) -> None:
    """A zero-row staging file for ``schema``: replacing a day with it empties the day."""
    import pyarrow.parquet as pq

    pq.write_table(staging_arrow_schema(schema).empty_table(), path)
