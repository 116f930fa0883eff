"""SomlierBigQueryHook: the Google provider's BigQueryHook plus the I/O batch scoring needs.

What it adds to ``BigQueryHook``:

* read one day of a table as Arrow record batches through the Storage Read API
  (``selected_fields`` + ``row_restriction`` pushed down; bounded memory);
* replace one day of a destination table atomically: Parquet staged on local disk →
  load job into a private staging table → one multi-statement transaction
  ``DELETE day; INSERT … SELECT staging`` → drop the staging table;
* sweep staging tables that killed runs left behind.

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
import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

from airflow_provider_somlier.errors import InvalidArgumentError, TableNotFoundError, WarehouseUnavailableError
from airflow_provider_somlier.hooks.bigquery_calls import WarehouseCalls
from airflow_provider_somlier.refs import TableRef

if TYPE_CHECKING:
    import pyarrow as pa
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

STAGING_PREFIX = "_somlier_staging_"
# Staging tables older than this are leftovers of killed runs (a live run's staging
# lives for seconds to minutes); every run drops its destination's.
STAGING_TTL = dt.timedelta(hours=24)
# Characters of the destination's name kept in a staging name; with the hash of the
# whole name and the suffixes a staging name stays within 208 characters for any
# destination: below BigQuery's limit (1,024) and the emulator's (255).
_STAGING_NAME_CHARS = 150
_LEGACY_STAGING_SUFFIX = r"_[0-9]{8}_[0-9a-f]{12}_[0-9a-f]{8}"
DEFAULT_RETRY_DEADLINE_SECONDS = 120.0
DEFAULT_READ_STALL_SECONDS = 120.0
# After a failure that is already a warehouse outage, dropping the staging table gets
# one short attempt: its error must not replace, nor long delay, the original one.
_CLEANUP_AFTER_OUTAGE_SECONDS = 5.0
_CONCURRENT_UPDATE = re.compile(r"concurrent update|could not serialize|conflict", re.IGNORECASE)


@dataclass(frozen=True)
class ReplaceResult:
    rows_written: int
    job_id: str


@dataclass(frozen=True)
class ReadStreams:
    """One read session split into streams: what a sharded plan hands its score tasks."""

    session: str
    streams: list[str]
    arrow_schema: bytes  # the session's serialized Arrow schema, needed to decode any stream
    expires_at: dt.datetime | None


def shard_staging_table_name(destination_table: str, day: dt.date, plan_digest: str, shard: int) -> str:
    """The staging table of one shard of one plan: the same on every retry, so a retry replaces it."""
    return f"{staging_key(destination_table)}{day:%Y%m%d}_{plan_digest}_s{shard:04d}"


def staging_key(destination_table: str) -> str:
    """The name prefix of every staging table of ``destination_table`` (and of no other)."""
    digest = hashlib.sha256(destination_table.encode()).hexdigest()[:8]
    return f"{STAGING_PREFIX}{destination_table[:_STAGING_NAME_CHARS]}_{digest}_"


def staging_table_name(destination_table: str, day: dt.date, run_digest: str) -> str:
    """A fresh staging table name for one attempt at replacing ``day``; always a valid name."""
    return f"{staging_key(destination_table)}{day:%Y%m%d}_{run_digest}_{uuid.uuid4().hex[:8]}"


def is_staging_of(table_name: str, destination_table: str) -> bool:
    """Whether ``table_name`` is a staging table of ``destination_table`` (this or the earlier naming)."""
    return table_name.startswith(staging_key(destination_table)) or bool(
        re.fullmatch(re.escape(STAGING_PREFIX + destination_table) + _LEGACY_STAGING_SUFFIX, table_name)
    )


class SomlierBigQueryHook(BigQueryHook):
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
        from google.cloud.bigquery_storage_v1 import types

        calls = self.storage_read
        client = self.read_client()
        session = calls.call(
            f"create_read_session on {ref}",
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
            retry=None,
        )
        self.log.info("Read session on %s: %d stream(s), filter %s", ref, len(session.streams), row_restriction)
        if not session.streams:
            return iter(())
        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        return self._stream_batches(str(ref), session.streams[0].name, schema, read_ahead_pages)

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
        from google.cloud.bigquery_storage_v1 import types

        session = self.storage_read.call(
            f"create_read_session on {ref} ({max_streams} streams)",
            self.read_client().create_read_session,
            parent=f"projects/{self.project_id}",
            read_session=types.ReadSession(
                table=ref.storage_path,
                data_format=types.DataFormat.ARROW,
                read_options=types.ReadSession.TableReadOptions(selected_fields=list(columns), row_restriction=row_restriction),
            ),
            max_stream_count=max_streams,
            retry=None,
        )
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

    def stage_parquet(
        self, parquet_path: str, staging: TableRef, staged_schema: Sequence[bigquery.SchemaField]
    ) -> int:
        """Load the Parquet file into ``staging``, replacing what a previous attempt left there; return its rows."""
        from google.cloud import bigquery

        table = bigquery.Table(staging.table_id, schema=list(staged_schema))
        table.expires = dt.datetime.now(dt.timezone.utc) + STAGING_TTL
        self.rest.call("create_table (shard staging)", self.client().create_table, table, exists_ok=True, retry=None)
        digest = hashlib.sha256(staging.table_id.encode()).hexdigest()[:12]
        load = self._load_staging(parquet_path, staging, staged_schema, digest)
        return int(load.output_rows or 0)

    def count_staged(self, stagings: Sequence[TableRef]) -> list[int]:
        """Rows in each staging table, in order, from one query (what a commit checks before it commits)."""
        if not stagings:
            return []
        sql = " UNION ALL ".join(
            f"SELECT {i} AS i, COUNT(*) AS n FROM {staging.sql}" for i, staging in enumerate(stagings)
        )
        counts = {int(row["i"]): int(row["n"]) for row in self._query_rows("count of the shard staging tables", sql)}
        return [counts[i] for i in range(len(stagings))]

    def missing_tables(self, refs: Sequence[TableRef]) -> list[TableRef]:
        """Those of ``refs`` that do not exist (a committed plan's staging tables are dropped)."""
        return [ref for ref in refs if self.get_table_or_none(ref) is None]

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

    def drop_tables(self, refs: Sequence[TableRef]) -> None:
        """Drop ``refs`` (missing ones are fine): the staging tables of a committed plan."""
        for ref in refs:
            self.rest.call("delete_table (shard staging)", self.client().delete_table, ref.table_id, not_found_ok=True, retry=None)

    def _query_rows(self, step: str, sql: str) -> list[Any]:
        """Run a small query within the deadline and return its rows."""
        client = self.client()
        job = self.rest.call(f"{step} submit", client.query, sql, retry=None, job_retry=None)
        self._wait_for_job(step, job)
        return list(self.rest.call(f"{step} result", job.result, retry=None))

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
        also: Sequence[str] = (),
    ) -> ReplaceResult:
        """Make the destination's ``day`` hold exactly the rows of ``parquet_path``.

        The file holds the columns of ``schema`` except those in ``constants`` (column →
        value, the same on every row), which the insert writes as literals. It is loaded
        into a staging table first; one transaction then deletes the day and inserts the
        staged rows, so a reader (or a killed task) sees the old day or the new day, never
        a mixture. The staging table is dropped afterwards, whatever happened; one left by
        a killed process is swept by a later run (and expires on BigQuery by itself).
        ``also`` are statements run inside the same transaction (the day's profile rows).
        """
        from google.cloud import bigquery

        constants = dict(constants or {})
        staged_schema = [field for field in schema if field.name not in constants]
        digest = hashlib.sha256(job_id_seed.encode()).hexdigest()[:12]

        self.sweep_stale_staging(destination)
        staging = destination.sibling(staging_table_name(destination.table, day, digest))
        client = self.client()
        staging_table = bigquery.Table(staging.table_id, schema=staged_schema)
        staging_table.expires = dt.datetime.now(dt.timezone.utc) + STAGING_TTL
        self.rest.call("create_table (staging)", client.create_table, staging_table, exists_ok=True, retry=None)
        failure: BaseException | None = None
        try:
            load = self._load_staging(parquet_path, staging, staged_schema, digest)
            job_id = self.commit_staged(
                destination, schema, partition_column, day, [staging], digest, constants, also=also
            )
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._drop_staging(staging, failure)
        return ReplaceResult(rows_written=int(load.output_rows or 0), job_id=job_id)

    def commit_staged(
        self,
        destination: TableRef,
        schema: Sequence[bigquery.SchemaField],
        partition_column: str,
        day: dt.date,
        stagings: Sequence[TableRef],
        digest: str,
        constants: Mapping[str, Any] | None = None,
        also: Sequence[str] = (),
    ) -> str:
        """One transaction: delete ``day`` from the destination, insert every staging table's rows.

        ``also`` are further statements committed (or rolled back) with them: the day's profile.

        The staging tables hold the columns of ``schema`` except those in ``constants``,
        which are written as literals. Used for one staging table (the single task) and
        for one per shard (the sharded form): either way the day is old or new, never a
        mixture. Returns the transaction's job id.
        """
        from airflow_provider_somlier.bq_sql import literal

        constants = dict(constants or {})
        select_list = ", ".join(
            literal(constants[field.name], field.field_type, field=field.name) if field.name in constants
            else f"`{field.name}`"
            for field in schema
        )
        column_list = ", ".join(f"`{field.name}`" for field in schema)
        inserts = "".join(
            f"INSERT INTO {destination.sql} ({column_list}) SELECT {select_list} FROM {staging.sql};\n"
            for staging in stagings
        )
        script = (
            "BEGIN TRANSACTION;\n"
            f"DELETE FROM {destination.sql} WHERE `{partition_column}` = {literal(day, 'DATE')};\n"
            f"{inserts}"
            + "".join(f"{statement}\n" for statement in also)
            + "COMMIT TRANSACTION;"
        )
        return self._run_transaction(script, digest)

    def _load_staging(
        self, parquet_path: str, staging: TableRef, staged_schema: Sequence[bigquery.SchemaField], digest: str
    ) -> bigquery.LoadJob:
        """Upload the Parquet file into the staging table (a retried upload starts over)."""
        from google.cloud import bigquery

        job_config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            schema=list(staged_schema),
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )

        def upload(timeout: float) -> bigquery.LoadJob:
            self._job_in_flight = job_id = f"somlier_stage_{digest}_{uuid.uuid4().hex}"
            with open(parquet_path, "rb") as parquet:
                # No ``size``: the client then uses a resumable upload, which both BigQuery and
                # the emulator accept for any file size. ``num_retries=0``: the deadline retries.
                return self.client().load_table_from_file(
                    parquet,
                    staging.table_id,
                    job_id=job_id,
                    job_config=job_config,
                    num_retries=0,
                    timeout=timeout,
                )

        try:
            load = self.rest.call("upload of the staged predictions", upload)
            self._wait_for_job("load job into staging", load)
        finally:
            self._job_in_flight = None
        return load

    def _run_transaction(self, script: str, digest: str, attempts: int = 5) -> str:
        """Run the replace script, retrying when another transaction touched the table first."""
        from google.api_core.exceptions import BadRequest, Conflict

        client = self.client()
        for attempt in range(1, attempts + 1):
            job_id = self._job_in_flight = f"somlier_replace_{digest}_{uuid.uuid4().hex}"

            def submit(timeout: float):
                # A resubmission after a lost answer finds the job instead of running it twice.
                try:
                    return client.query(script, job_id=job_id, retry=None, job_retry=None, timeout=timeout)
                except Conflict:
                    return client.get_job(job_id, retry=None, timeout=timeout)

            try:
                job = self.rest.call("transaction submit", submit)
                self._wait_for_job("transaction", job)
                return job.job_id
            except (BadRequest, Conflict) as exc:
                if attempt == attempts or not _CONCURRENT_UPDATE.search(str(exc)):
                    raise
                self.log.warning("Concurrent update on attempt %d, retrying: %s", attempt, exc)
            finally:
                self._job_in_flight = None
            time.sleep(min(2**attempt, 30))
        raise AssertionError("unreachable")

    def _wait_for_job(self, step: str, job: bigquery.job._AsyncJob) -> None:
        """Poll ``job`` until it is done; raise its error if it failed.

        Each poll is one call within the deadline, so an unreachable warehouse fails the
        wait within it. A job the warehouse reports as running is waited for as long as
        it runs (bound the task with ``execution_timeout``; ``on_kill`` cancels it).
        """
        from google.cloud.bigquery.job.base import _error_result_to_exception

        pause = 0.05
        while job.state != "DONE":
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            self.rest.call(f"{step} {job.job_id} status", job.reload, retry=None)
        if job.error_result:
            raise _error_result_to_exception(job.error_result, job.errors or ())

    def _drop_staging(self, staging: TableRef, failure: BaseException | None) -> None:
        """Drop the staging table; never let this replace (or long delay) an error already raised."""
        outage = isinstance(failure, WarehouseUnavailableError)
        try:
            self.rest.call(
                "delete_table (staging)",
                self.client().delete_table,
                staging.table_id,
                not_found_ok=True,
                retry=None,
                deadline_seconds=min(_CLEANUP_AFTER_OUTAGE_SECONDS, self.retry_deadline_seconds) if outage else None,
            )
        except Exception as exc:  # noqa: BLE001 - the day is written, or an error is on its way: log only
            self.log.warning("Could not drop staging table %s (a later run sweeps it): %s", staging, exc)

    # -- housekeeping -----------------------------------------------------------------------
    def sweep_stale_staging(self, destination: TableRef, older_than: dt.timedelta | None = None) -> list[str]:
        """Drop ``destination``'s staging tables created more than ``older_than`` ago.

        ``older_than`` defaults to ``STAGING_TTL`` (a day). Staging tables are private to
        SoMLier; a run that was killed (or lost the warehouse while cleaning up) leaves its
        own behind. BigQuery expires them by itself, the
        emulator does not, and neither should hold them longer than a day. Returns the
        names dropped.
        """
        from google.api_core.exceptions import Forbidden, NotFound

        dataset = f"{destination.project}.{destination.dataset}"
        client = self.client()
        try:
            tables = self.rest.call(
                f"list_tables {dataset} (staging sweep)",
                lambda timeout: list(client.list_tables(dataset, retry=None, timeout=timeout)),
            )
        except NotFound:
            return []
        cutoff = dt.datetime.now(dt.timezone.utc) - (STAGING_TTL if older_than is None else older_than)
        dropped = []
        for table in tables:
            if not is_staging_of(table.table_id, destination.table):
                continue
            created = table.created
            if created is None:
                created = self.rest.call("get_table (staging sweep)", client.get_table, table.reference, retry=None).created
            if created is None or created > cutoff:
                continue
            try:
                self.rest.call(
                    "delete_table (staging sweep)", client.delete_table, table.reference, not_found_ok=True, retry=None
                )
            except Forbidden as exc:
                self.log.warning("Cannot drop stale staging table %s: %s", table.table_id, exc)
                continue
            dropped.append(table.table_id)
        if dropped:
            self.log.info("Dropped %d stale staging table(s) of %s: %s", len(dropped), destination, ", ".join(dropped))
        return dropped

    def cancel_running_job(self) -> str | None:
        """Cancel the load or transaction job this hook is submitting or waiting on; return its id.

        Called from the operator's ``on_kill``. The id is known before the job is submitted,
        so a kill while the submit is still unanswered cancels it too. A cancelled
        transaction rolls back: the day stays as it was (or, had it committed, as the job
        wrote it). Returns None when no job is in flight or the warehouse never got it.
        """
        from google.api_core.exceptions import NotFound

        job_id = self._job_in_flight
        if job_id is None:
            return None
        self.log.info("Cancelling BigQuery job %s", job_id)
        try:
            self.rest.call(
                f"cancel_job {job_id}",
                self.client().cancel_job,
                job_id,
                location=self.location,
                retry=None,
                # a kill has a grace period of its own: do not spend it all on a dead warehouse
                deadline_seconds=min(_CLEANUP_AFTER_OUTAGE_SECONDS * 2, self.retry_deadline_seconds),
            )
        except NotFound:
            self.log.info("BigQuery job %s was never created; nothing to cancel", job_id)
            return None
        return job_id


def _is_not_found(exc: BaseException | None) -> bool:
    """Whether ``exc`` (a gRPC or API error) says the thing asked for does not exist."""
    from google.api_core.exceptions import NotFound, from_grpc_error

    if exc is not None and hasattr(exc, "code") and callable(exc.code) and not isinstance(exc, NotFound):
        try:
            exc = from_grpc_error(exc)
        except Exception:  # noqa: BLE001 - not a gRPC error after all
            return False
    return isinstance(exc, NotFound)
