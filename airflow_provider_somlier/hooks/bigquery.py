"""SomlierBigQueryHook: the Google provider's BigQueryHook plus the I/O batch scoring needs.

What it adds to ``BigQueryHook``:

* read one day of a table as Arrow record batches through the Storage Read API
  (``selected_fields`` + ``row_restriction`` pushed down; bounded memory);
* replace one day of a destination table atomically: Parquet staged on local disk →
  load job into a private staging table → one multi-statement transaction
  ``DELETE day; INSERT … SELECT staging`` → drop the staging table;
* sweep staging tables that killed runs left behind.

This module holds the connection, the clients and the reads; writing a day is
:mod:`.bigquery_write` and the staging tables (names, sweep, the sharded commit's
helpers) :mod:`.bigquery_staging`, both parts of the one hook.

Every call to BigQuery goes through one helper (:mod:`.bigquery_calls`) that bounds it
by the connection's deadline and turns transport failures into
:class:`WarehouseUnavailableError` naming the step and the endpoint.

The same code runs on BigQuery and on a local emulator; only the connection differs.
Connection extras read here, besides the Google provider's own (``project``,
``is_anonymous``, ``key_path``…):

``api_endpoint``
    REST base URL, e.g. ``http://127.0.0.1:9050`` for the emulator.
``storage_read_endpoint``
    Storage Read API gRPC endpoint. ``grpc://host:port`` is plaintext (emulator);
    ``host:port`` uses TLS with the connection's credentials.
``retry_deadline_seconds``
    How long each step (one call, with its retries of transient failures) may take
    before it fails (default 120).
``read_stall_seconds``
    How long the read stream may deliver no page before it fails (default 120).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

from airflow_provider_somlier.errors import (
    InvalidArgumentError,
    ReadRefusedError,
    TableNotFoundError,
    WarehouseUnavailableError,
)
from airflow_provider_somlier.hooks.bigquery_calls import WarehouseCalls
from airflow_provider_somlier.hooks.bigquery_staging import StagingTables
from airflow_provider_somlier.hooks.bigquery_write import DayWrites
from airflow_provider_somlier.refs import TableRef

if TYPE_CHECKING:
    import pyarrow as pa
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

DEFAULT_RETRY_DEADLINE_SECONDS = 120.0
DEFAULT_READ_STALL_SECONDS = 120.0


@dataclass(frozen=True)
class ReadStreams:
    """One read session split into streams: what a sharded plan hands its score tasks."""

    session: str
    streams: list[str]
    arrow_schema: bytes  # the session's serialized Arrow schema, needed to decode any stream
    expires_at: dt.datetime | None


class SomlierBigQueryHook(DayWrites, StagingTables, BigQueryHook):
    """BigQuery I/O for SoMLier, on connection type ``google_cloud_platform``."""

    def __init__(self, gcp_conn_id: str = "google_cloud_default", location: str | None = None, **kwargs: Any):
        super().__init__(gcp_conn_id=gcp_conn_id, location=location, use_legacy_sql=False, **kwargs)
        self._client: bigquery.Client | None = None
        self._read_client: BigQueryReadClient | None = None
        # The id of the load or transaction job being submitted or waited on, for on_kill.
        self._job_in_flight: str | None = None

    # -- connection settings ----------------------------------------------------------------
    def _seconds_extra(self, name: str, default: float) -> float:
        raw = self._get_field(name, None)
        if raw in (None, ""):
            return default
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            seconds = float("nan")
        if not 0 < seconds < 86_400:
            raise InvalidArgumentError(
                f"connection {self.gcp_conn_id!r} extra {name} must be a number of seconds between 0 and 86400, "
                f"got {raw!r}"
            )
        return seconds

    @property
    def retry_deadline_seconds(self) -> float:
        """How long one step (a call and its retries) may take: the ``retry_deadline_seconds`` extra."""
        return self._seconds_extra("retry_deadline_seconds", DEFAULT_RETRY_DEADLINE_SECONDS)

    @property
    def read_stall_seconds(self) -> float:
        """How long the read stream may go without a page: the ``read_stall_seconds`` extra."""
        return self._seconds_extra("read_stall_seconds", DEFAULT_READ_STALL_SECONDS)

    @property
    def rest(self) -> WarehouseCalls:
        """Calls to the REST API, each within the connection's deadline."""
        endpoint = self._get_field("api_endpoint", None) or "https://bigquery.googleapis.com"
        return WarehouseCalls(self.retry_deadline_seconds, endpoint)

    @property
    def storage_read(self) -> WarehouseCalls:
        """Calls to the Storage Read API, each within the connection's deadline."""
        endpoint = self._get_field("storage_read_endpoint", None) or "bigquerystorage.googleapis.com"
        return WarehouseCalls(self.retry_deadline_seconds, endpoint)

    # -- clients ----------------------------------------------------------------------------
    def get_client_options(self, api_endpoint_override: str | None = None) -> ClientOptions:
        return super().get_client_options(api_endpoint_override or self._get_field("api_endpoint", None))

    def client(self) -> bigquery.Client:
        """One REST client per hook instance (the provider's ``get_client`` builds a new one per call)."""
        if self._client is None:
            self._client = self.get_client(project_id=self.project_id, location=self.location)
        return self._client

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
            return self.rest.call(f"get_table {ref}", self.client().get_table, ref.table_id, retry=None)
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

        dataset = f"{ref.project}.{ref.dataset}"
        try:
            self.rest.call(f"get_dataset {dataset}", self.client().get_dataset, dataset, retry=None)
        except NotFound:
            raise TableNotFoundError(
                f"dataset {dataset} of the {role} table {ref.table} does not exist: "
                "create it (with the location you want) before the first run"
            ) from None

    def create_day_partitioned_table(
        self, ref: TableRef, schema: Sequence[bigquery.SchemaField], partition_column: str,
        description: str = "Predictions written by SoMLier's MLOpsOfflineOperator, one partition per target day.",
    ) -> bigquery.Table:
        """Create ``ref`` partitioned by day on ``partition_column``; an existing table is returned as is."""
        from google.cloud import bigquery

        table = bigquery.Table(ref.table_id, schema=list(schema))
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=partition_column
        )
        table.description = description
        self.log.info("Creating destination %s partitioned by %s", ref, partition_column)
        return self.rest.call(
            f"create_table {ref}", self.client().create_table, table, exists_ok=True, retry=None
        )

    # -- reading ----------------------------------------------------------------------------
    def read_batches(
        self, ref: TableRef, columns: Sequence[str], row_restriction: str, read_ahead_pages: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """Stream ``columns`` of the rows matching ``row_restriction`` as Arrow record batches.

        The read session is created here, within the deadline; its pages are fetched on a
        background thread up to ``read_ahead_pages`` (>= 1) ahead while the caller works on
        the current one, so memory holds a few pages whatever the size of the day. When no
        page arrives for ``read_stall_seconds`` the stream is cancelled and
        :class:`WarehouseUnavailableError` is raised.
        """
        import pyarrow as pa

        session = self._read_session(ref, columns, row_restriction, max_streams=1)
        self.log.info("Read session on %s: %d stream(s), filter %s", ref, len(session.streams), row_restriction)
        if not session.streams:
            return iter(())
        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        return self._stream_batches(str(ref), session.streams[0].name, schema, read_ahead_pages)

    def _read_session(self, ref: TableRef, columns: Sequence[str], row_restriction: str, *, max_streams: int) -> Any:
        """A Storage Read session (Arrow) on ``columns`` of the rows matching ``row_restriction``.

        A refusal (400: a column name or filter the service will not read; 403) is an answer,
        not an outage: it becomes :class:`ReadRefusedError` naming the table, the columns and
        the service's reason, instead of a retry that would be refused the same way.
        """
        from google.api_core import exceptions as api
        from google.cloud.bigquery_storage_v1 import types

        try:
            return self.storage_read.call(
                f"create_read_session on {ref}" + (f" ({max_streams} streams)" if max_streams > 1 else ""),
                self.read_client().create_read_session,
                parent=f"projects/{self.project_id}",
                read_session=types.ReadSession(
                    table=ref.storage_path,
                    data_format=types.DataFormat.ARROW,
                    read_options=types.ReadSession.TableReadOptions(
                        selected_fields=list(columns), row_restriction=row_restriction
                    ),
                ),
                max_stream_count=max_streams,
                retry=None,
            )
        except (api.BadRequest, api.Forbidden, api.PermissionDenied) as exc:
            raise ReadRefusedError(
                f"BigQuery refused to read {', '.join(map(repr, columns))} of {ref} where {row_restriction}: "
                f"{exc.message or exc}. Expected columns and a filter the Storage Read API serves "
                "(plain column names: alias others in a view) and, for the connection's account, read access "
                "to the table and roles/bigquery.readSessionUser (bigquery.readsessions.create) on the project"
            ) from exc

    def _stream_batches(self, ref: str, stream_name: str, schema: pa.Schema, read_ahead_pages: int = 1) -> Iterator[pa.RecordBatch]:
        """The pages of one read stream, fetched ahead on a thread, failing by name when it stalls."""
        from airflow_provider_somlier.hooks.bigquery_stream import ReadStreamPages
        from airflow_provider_somlier.read_ahead import read_ahead

        calls = self.storage_read
        client = self.read_client()
        # Plaintext endpoints are local emulators, which ignore a resumed stream's offset.
        resume = not (self._get_field("storage_read_endpoint", None) or "").startswith("grpc://")
        pages = ReadStreamPages(client, stream_name, schema, calls, resume=resume)
        stall = self.read_stall_seconds

        def stalled(seconds: float) -> WarehouseUnavailableError:
            return calls.unavailable(
                f"read stream of {ref} (no page for read_stall_seconds={seconds:g} after {pages.rows} row(s))",
                TimeoutError("the stream went silent"),
                seconds,
            )

        return read_ahead(pages, max(1, read_ahead_pages), stall_seconds=stall, on_stall=stalled)

    # -- sharded reading and staging --------------------------------------------------------
    def count_rows(self, ref: TableRef, row_restriction: str) -> int:
        """How many rows of ``ref`` match ``row_restriction`` (a sharded plan's source count)."""
        rows = self._query_rows(f"count of {ref}", f"SELECT COUNT(*) AS n FROM {ref.sql} WHERE {row_restriction}")
        return int(rows[0]["n"])

    def create_read_streams(
        self, ref: TableRef, columns: Sequence[str], row_restriction: str, max_streams: int
    ) -> ReadStreams:
        """One read session over the matching rows, split by the warehouse into up to ``max_streams`` streams.

        Each stream is read by one shard; together they hold every matching row once. The
        warehouse may hand out fewer streams than asked (a small table); never more.
        """
        session = self._read_session(ref, columns, row_restriction, max_streams=max_streams)
        expires = session.expire_time if "expire_time" in session else None
        self.log.info("Read session %s on %s: %d stream(s), filter %s", session.name, ref, len(session.streams), row_restriction)
        return ReadStreams(
            session=session.name,
            streams=[stream.name for stream in session.streams],
            arrow_schema=bytes(session.arrow_schema.serialized_schema),
            expires_at=expires if expires and expires.year > 1970 else None,
        )

    def read_stream(
        self, stream_name: str, arrow_schema: bytes, *, expires_at: dt.datetime | None = None, read_ahead_pages: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """The rows of one stream of a session made by :meth:`create_read_streams`, as Arrow batches.

        A session that has expired (or that the warehouse lost) cannot be read again, and a
        new session splits the rows differently: reading "the same" stream of another
        session would mix rows of two splits. So this fails with
        :class:`ReadSessionExpiredError` instead, before or during the read.
        """
        import pyarrow as pa

        from airflow_provider_somlier.errors import ReadSessionExpiredError

        advice = "clear the whole task group (plan, score, commit) so the plan opens a new session"
        if expires_at is not None and dt.datetime.now(dt.timezone.utc) >= expires_at:
            raise ReadSessionExpiredError(f"read stream {stream_name} expired at {expires_at.isoformat()}; {advice}")
        schema = pa.ipc.read_schema(pa.py_buffer(arrow_schema))
        batches = self._stream_batches(stream_name, stream_name, schema, read_ahead_pages)
        try:
            yield from batches
        except WarehouseUnavailableError as exc:
            if not _is_not_found(exc.__cause__):
                raise
            raise ReadSessionExpiredError(
                f"read stream {stream_name} is gone (the session expired or the warehouse restarted); {advice}"
            ) from exc

    def count_rows_where(self, table: TableRef, values: Mapping[str, str]) -> int:
        """Rows of ``table`` whose columns equal the given SQL literals (column → literal)."""
        condition = " AND ".join(f"`{column}` = {value}" for column, value in values.items())
        rows = self._query_rows(f"count of rows in {table}", f"SELECT COUNT(*) AS n FROM {table.sql} WHERE {condition}")
        return int(rows[0]["n"])

    def rows_of_latest_days(self, table: TableRef, date_column: str, before: dt.date, days: int) -> list[dict[str, Any]]:
        """Every row of the latest ``days`` dates before ``before`` that ``table`` holds (a baseline)."""
        from airflow_provider_somlier.bq_sql import literal

        before_day = literal(before, "DATE")
        rows = self._query_rows(
            f"rows of the latest days of {table}",
            f"SELECT * FROM {table.sql} WHERE `{date_column}` IN (SELECT DISTINCT `{date_column}` FROM {table.sql} "
            f"WHERE `{date_column}` < {before_day} ORDER BY `{date_column}` DESC LIMIT {int(days)})",
        )
        return [dict(row.items()) for row in rows]

    def _query_rows(self, step: str, sql: str, *, cancellable: bool = False) -> list[Any]:
        """Run a query within the deadline and return its rows.

        Its job id is chosen here, so a submit resent after a lost answer finds the job instead
        of running it twice. ``cancellable``: held as the job in flight while it runs, so
        ``on_kill`` cancels it (the copy of a view's day can be a long query); only for queries
        of the task's own thread — the baseline's, on a thread of its own, must not displace
        the load or transaction that ``on_kill`` is there to cancel.
        """
        import uuid

        from google.api_core.exceptions import Conflict

        client = self.client()
        job_id = f"somlier_query_{uuid.uuid4().hex}"
        if cancellable:
            self._job_in_flight = job_id

        def submit(timeout: float) -> Any:
            try:
                return client.query(sql, job_id=job_id, retry=None, job_retry=None, timeout=timeout)
            except Conflict:
                return client.get_job(job_id, retry=None, timeout=timeout)

        try:
            job = self.rest.call(f"{step} submit", submit)
            self._wait_for_job(step, job)
            return list(self.rest.call(f"{step} result", job.result, retry=None))
        finally:
            if cancellable:
                self._job_in_flight = None

def _is_not_found(exc: BaseException | None) -> bool:
    """Whether ``exc`` (a gRPC or API error) says the thing asked for does not exist."""
    from google.api_core.exceptions import NotFound, from_grpc_error

    if exc is not None and hasattr(exc, "code") and callable(exc.code) and not isinstance(exc, NotFound):
        try:
            exc = from_grpc_error(exc)
        except Exception:  # noqa: BLE001 - not a gRPC error after all
            return False
    return isinstance(exc, NotFound)
