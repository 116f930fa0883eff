"""Load feature rows for the demo, tests and benchmarks into a BigQuery (or emulator) table.

Rows are sklearn's diabetes features with a ``row_id``, a ``load_date`` (DATE) and an
``event_ts`` (TIMESTAMP, noon KST of that day), written to local Parquet and loaded
with the real client's resumable upload.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_provider_somlier.devtools.sample_model import FEATURES, diabetes_frame

if TYPE_CHECKING:
    from google.cloud import bigquery

KST = dt.timezone(dt.timedelta(hours=9))


def feature_schema() -> list[bigquery.SchemaField]:
    from google.cloud import bigquery

    return [
        bigquery.SchemaField("row_id", "INT64"),
        bigquery.SchemaField("load_date", "DATE"),
        bigquery.SchemaField("event_ts", "TIMESTAMP"),
        *(bigquery.SchemaField(name, "FLOAT64") for name in FEATURES),
    ]


def feature_batches(days: Sequence[dt.date], rows_per_day: int, batch_rows: int = 200_000):
    """Yield Arrow tables of feature rows, ``rows_per_day`` for each day."""
    import numpy as np
    import pyarrow as pa

    frame, _ = diabetes_frame()
    base = frame.to_numpy()
    row_id = 0
    for day in days:
        noon = dt.datetime.combine(day, dt.time(12), KST).astimezone(dt.timezone.utc)
        for start in range(0, rows_per_day, batch_rows):
            count = min(batch_rows, rows_per_day - start)
            picks = base[np.arange(start, start + count) % len(base)]
            columns = {
                "row_id": pa.array(np.arange(row_id, row_id + count), pa.int64()),
                "load_date": pa.array([day] * count, pa.date32()),
                "event_ts": pa.array([noon] * count, pa.timestamp("us", tz="UTC")),
            }
            columns.update({name: pa.array(picks[:, i]) for i, name in enumerate(FEATURES)})
            row_id += count
            yield pa.table(columns)


def load_features(
    client: bigquery.Client, table_id: str, days: Sequence[dt.date], rows_per_day: int, *, replace: bool = True
) -> int:
    """Create ``table_id`` (partitioned by ``load_date``) and load the rows; return the row count."""
    import pyarrow.parquet as pq
    from google.cloud import bigquery

    dataset_id = table_id.rsplit(".", 1)[0]
    client.create_dataset(dataset_id, exists_ok=True)
    if replace:
        client.delete_table(table_id, not_found_ok=True)
    table = bigquery.Table(table_id, schema=feature_schema())
    table.time_partitioning = bigquery.TimePartitioning(field="load_date")
    client.create_table(table, exists_ok=True)
    total = 0
    with tempfile.NamedTemporaryFile(suffix=".parquet") as staged:
        writer = None
        for batch in feature_batches(days, rows_per_day):
            if writer is None:
                writer = pq.ParquetWriter(staged.name, batch.schema)
            writer.write_table(batch)
            total += batch.num_rows
        if writer is None:
            return 0
        writer.close()
        with open(staged.name, "rb") as parquet:
            client.load_table_from_file(
                parquet,
                table_id,
                job_config=bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.PARQUET,
                    write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                ),
            ).result()
    return total
