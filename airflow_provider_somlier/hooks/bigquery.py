"""SomlierBigQueryHook: the Google provider's BigQueryHook plus the I/O batch scoring needs.

What it adds to ``BigQueryHook``:

* read one day of a table as Arrow record batches through the Storage Read API
  (``selected_fields`` + ``row_restriction`` pushed down; bounded memory);
* replace one day of a destination table atomically: Parquet staged on local disk →
  load job into a private staging table → one multi-statement transaction
  ``DELETE day; INSERT … SELECT staging`` → drop the staging table.

The same code runs on BigQuery and on a local emulator; only the connection differs.
Connection extras read here, besides the Google provider's own (``project``,
``is_anonymous``, ``key_path``…):

``api_endpoint``
    REST base URL, e.g. ``http://127.0.0.1:9050`` for the emulator.
``storage_read_endpoint``
    Storage Read API gRPC endpoint. ``grpc://host:port`` is plaintext (emulator);
    ``host:port`` uses TLS with the connection's credentials.
``retry_deadline_seconds``
    How long REST calls retry on transient errors before failing (default 120).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

from airflow_provider_somlier.errors import TableNotFoundError, WarehouseUnavailableError
from airflow_provider_somlier.refs import TableRef

if TYPE_CHECKING:
    import datetime as dt

    import pyarrow as pa
    from google.api_core.client_options import ClientOptions
    from google.api_core.retry import Retry
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

STAGING_PREFIX = "_somlier_staging_"
STAGING_TTL_HOURS = 24
_CONCURRENT_UPDATE = re.compile(r"concurrent update|could not serialize|conflict", re.IGNORECASE)


@dataclass(frozen=True)
class ReplaceResult:
    rows_written: int
    job_id: str


class SomlierBigQueryHook(BigQueryHook):
    """BigQuery I/O for SoMLier, on connection type ``google_cloud_platform``."""

    def __init__(self, gcp_conn_id: str = "google_cloud_default", location: str | None = None, **kwargs: Any):
        super().__init__(gcp_conn_id=gcp_conn_id, location=location, use_legacy_sql=False, **kwargs)
        self._client: bigquery.Client | None = None
        self._read_client: BigQueryReadClient | None = None

    # -- clients ----------------------------------------------------------------------------
    def get_client_options(self, api_endpoint_override: str | None = None) -> ClientOptions:
        return super().get_client_options(api_endpoint_override or self._get_field("api_endpoint", None))

    def client(self) -> bigquery.Client:
        """One REST client per hook instance (the provider's ``get_client`` builds a new one per call)."""
        if self._client is None:
            self._client = self.get_client(project_id=self.project_id, location=self.location)
        return self._client

    @property
    def retry(self) -> Retry:
        """The client's default retry, bounded by the connection's ``retry_deadline_seconds``."""
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        deadline = float(self._get_field("retry_deadline_seconds", 120))
        return DEFAULT_RETRY.with_deadline(deadline).with_timeout(deadline)

    def read_client(self) -> BigQueryReadClient:
        """A Storage Read API client; plaintext for ``grpc://`` endpoints, TLS otherwise."""
        if self._read_client is None:
            from google.cloud.bigquery_storage_v1 import BigQueryReadClient
            from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
                BigQueryReadGrpcTransport,
            )

            endpoint = self._get_field("storage_read_endpoint", None)
            # Arrow pages can exceed gRPC's 4 MiB default receive limit.
            options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
            if endpoint and endpoint.startswith("grpc://"):
                import grpc

                channel = grpc.insecure_channel(endpoint.removeprefix("grpc://"), options=options)
                self._read_client = BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))
            else:
                from google.api_core.client_options import ClientOptions

                self._read_client = BigQueryReadClient(
                    credentials=self.get_credentials(),
                    client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None,
                )
        return self._read_client

    # -- metadata ---------------------------------------------------------------------------
    def get_table_or_none(self, ref: TableRef) -> bigquery.Table | None:
        from google.api_core.exceptions import NotFound

        try:
            return self._call(self.client().get_table, ref.table_id, retry=self.retry)
        except NotFound:
            return None

    def get_existing_table(self, ref: TableRef, *, role: str) -> bigquery.Table:
        table = self.get_table_or_none(ref)
        if table is None:
            raise TableNotFoundError(f"{role} table {ref} does not exist (project {ref.project})")
        return table

    def ensure_dataset_exists(self, ref: TableRef, *, role: str) -> None:
        """Fail early, and by name, when the dataset a table should live in is missing."""
        from google.api_core.exceptions import NotFound

        try:
            self._call(self.client().get_dataset, f"{ref.project}.{ref.dataset}", retry=self.retry)
        except NotFound:
            raise TableNotFoundError(
                f"dataset {ref.project}.{ref.dataset} of the {role} table {ref.table} does not exist: "
                "create it (with the location you want) before the first run"
            ) from None

    def create_day_partitioned_table(
        self, ref: TableRef, schema: Sequence[bigquery.SchemaField], partition_column: str
    ) -> bigquery.Table:
        """Create ``ref`` partitioned by day on ``partition_column``; an existing table is returned as is."""
        from google.cloud import bigquery

        table = bigquery.Table(ref.table_id, schema=list(schema))
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=partition_column
        )
        table.description = "Predictions written by SoMLier's MLOpsOfflineOperator, one partition per target day."
        self.log.info("Creating destination %s partitioned by %s", ref, partition_column)
        return self._call(self.client().create_table, table, exists_ok=True, retry=self.retry)

    # -- reading ----------------------------------------------------------------------------
    def read_batches(
        self, ref: TableRef, columns: Sequence[str], row_restriction: str, read_ahead_pages: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """Stream ``columns`` of the rows matching ``row_restriction`` as Arrow record batches.

        Up to ``read_ahead_pages`` pages are fetched on a background thread while the caller
        works on the current one (0: read only when asked), so memory holds a few pages
        whatever the size of the day.
        """
        from airflow_provider_somlier.read_ahead import read_ahead

        pages = self._stream_pages(ref, columns, row_restriction)
        return read_ahead(pages, read_ahead_pages) if read_ahead_pages else pages

    def _stream_pages(self, ref: TableRef, columns: Sequence[str], row_restriction: str) -> Iterator[pa.RecordBatch]:
        """One read session with one stream; its pages as record batches, in order."""
        from google.cloud.bigquery_storage_v1 import types

        client = self.read_client()
        session = self._call(
            client.create_read_session,
            parent=f"projects/{self.project_id}",
            read_session=types.ReadSession(
                table=ref.storage_path,
                data_format=types.DataFormat.ARROW,
                read_options=types.ReadSession.TableReadOptions(
                    selected_fields=list(columns), row_restriction=row_restriction
                ),
            ),
            max_stream_count=1,
        )
        self.log.info("Read session on %s: %d stream(s), filter %s", ref, len(session.streams), row_restriction)
        if not session.streams:
            return
        import pyarrow as pa

        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        for stream in session.streams:
            # ReadRowsStream resumes from the last offset if the connection drops mid-stream.
            for response in client.read_rows(stream.name):
                if response.row_count:
                    yield pa.ipc.read_record_batch(
                        pa.py_buffer(response.arrow_record_batch.serialized_record_batch), schema
                    )

    # -- writing ----------------------------------------------------------------------------
    def replace_partition(
        self,
        destination: TableRef,
        schema: Sequence[bigquery.SchemaField],
        partition_column: str,
        day: dt.date,
        parquet_path: str,
        job_id_seed: str,
        constants: Mapping[str, Any] | None = None,
    ) -> ReplaceResult:
        """Make the destination's ``day`` hold exactly the rows of ``parquet_path``.

        The file holds the columns of ``schema`` except those in ``constants`` (column →
        value, the same on every row), which the insert writes as literals. It is loaded
        into a staging table first; one transaction then deletes the day and inserts the
        staged rows, so a reader (or a killed task) sees the old day or the new day, never
        a mixture. Staging tables expire on their own if this process dies before dropping
        them.
        """
        import datetime as dt

        from google.cloud import bigquery

        from airflow_provider_somlier.bq_sql import literal

        constants = dict(constants or {})
        select_list = ", ".join(
            literal(constants[field.name], field.field_type, field=field.name) if field.name in constants
            else f"`{field.name}`"
            for field in schema
        )
        staged_schema = [field for field in schema if field.name not in constants]

        digest = hashlib.sha256(job_id_seed.encode()).hexdigest()[:12]
        staging = destination.sibling(
            f"{STAGING_PREFIX}{destination.table}_{day:%Y%m%d}_{digest}_{uuid.uuid4().hex[:8]}"
        )
        client = self.client()
        staging_table = bigquery.Table(staging.table_id, schema=staged_schema)
        staging_table.expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=STAGING_TTL_HOURS)
        self._call(client.create_table, staging_table, retry=self.retry)
        try:
            with open(parquet_path, "rb") as parquet:
                # No ``size``: the client then uses a resumable upload, which both BigQuery and
                # the emulator accept for any file size.
                load = client.load_table_from_file(
                    parquet,
                    staging.table_id,
                    job_id_prefix=f"somlier_stage_{digest}_",
                    job_config=bigquery.LoadJobConfig(
                        source_format=bigquery.SourceFormat.PARQUET,
                        schema=staged_schema,
                        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                    ),
                )
            self._call(load.result)
            column_list = ", ".join(f"`{field.name}`" for field in schema)
            script = (
                "BEGIN TRANSACTION;\n"
                f"DELETE FROM {destination.sql} WHERE `{partition_column}` = {literal(day, 'DATE')};\n"
                f"INSERT INTO {destination.sql} ({column_list}) SELECT {select_list} FROM {staging.sql};\n"
                "COMMIT TRANSACTION;"
            )
            job_id = self._run_transaction(script, digest)
        finally:
            self._call(client.delete_table, staging.table_id, not_found_ok=True, retry=self.retry)
        return ReplaceResult(rows_written=int(load.output_rows or 0), job_id=job_id)

    def _run_transaction(self, script: str, digest: str, attempts: int = 5) -> str:
        """Run the replace script, retrying when another transaction touched the table first."""
        from google.api_core.exceptions import BadRequest, Conflict

        for attempt in range(1, attempts + 1):
            job = self._call(self.client().query, script, job_id_prefix=f"somlier_replace_{digest}_")
            try:
                self._call(job.result)
                return job.job_id
            except (BadRequest, Conflict) as exc:
                if attempt == attempts or not _CONCURRENT_UPDATE.search(str(exc)):
                    raise
                self.log.warning("Concurrent update on attempt %d, retrying: %s", attempt, exc)
                time.sleep(min(2**attempt, 30))
        raise AssertionError("unreachable")

    # -- errors -----------------------------------------------------------------------------
    def _call(self, fn, *args: Any, **kwargs: Any):
        """Call the client, turning transport failures into one named, retryable error."""
        import requests
        from google.api_core.exceptions import RetryError, ServiceUnavailable

        try:
            return fn(*args, **kwargs)
        except (RetryError, ServiceUnavailable, requests.ConnectionError, ConnectionError) as exc:
            endpoint = self._get_field("api_endpoint", None) or "the BigQuery API"
            raise WarehouseUnavailableError(f"BigQuery at {endpoint} is unreachable: {exc}") from exc
