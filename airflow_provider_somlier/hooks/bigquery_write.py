"""Replacing one day of a destination: load the staging table, one transaction, cancel on kill.

:class:`DayWrites` is a part of :class:`~airflow_provider_somlier.hooks.bigquery.SomlierBigQueryHook`
(it uses the hook's ``client()``, ``rest`` deadline, ``log`` and staging tables).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.errors import TransactionTooLargeError, WarehouseUnavailableError
from airflow_provider_somlier.phases import PhaseClock
from airflow_provider_somlier.hooks.bigquery_staging import (
    STAGING_TTL,
    staging_table_name,
)

if TYPE_CHECKING:
    from google.cloud import bigquery

    from airflow_provider_somlier.refs import TableRef

# After a failure that is already a warehouse outage, dropping the staging table gets
# one short attempt: its error must not replace, nor long delay, the original one.
_CLEANUP_AFTER_OUTAGE_SECONDS = 5.0
# BigQuery's maximum query length ("1,024K characters" for GoogleSQL); the emulator has none.
MAX_SCRIPT_CHARS = 1_024_000
_CONCURRENT_UPDATE = re.compile(r"concurrent update|could not serialize|conflict", re.IGNORECASE)


@dataclass(frozen=True)
class ReplaceResult:
    rows_written: int
    job_id: str


class DayWrites:
    """One day of a destination replaced atomically, and the job in flight cancelled on kill."""

    _job_in_flight: str | None = None

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
        clock: PhaseClock | None = None,
        sweep: bool = True,
    ) -> ReplaceResult:
        """Make the destination's ``day`` hold exactly the rows of ``parquet_path``.

        The file holds the columns of ``schema`` except those in ``constants`` (column →
        value, the same on every row), which the insert writes as literals. It is loaded
        into a staging table first; one transaction then deletes the day and inserts the
        staged rows, so a reader (or a killed task) sees the old day or the new day, never
        a mixture. The staging table is dropped afterwards, whatever happened; one left by
        a killed process is swept by a later run (and expires on BigQuery by itself).
        ``also`` are statements run inside the same transaction (the day's profile rows).
        ``clock`` is told the seconds of the staging table's load and of the transaction.
        ``sweep=False`` leaves the stale-staging sweep to the caller (who runs it alongside).
        """
        from google.cloud import bigquery

        constants = dict(constants or {})
        staged_schema = [field for field in schema if field.name not in constants]
        digest = hashlib.sha256(job_id_seed.encode()).hexdigest()[:12]

        clock = clock or PhaseClock()
        load_started = time.perf_counter()
        if sweep:
            self.sweep_stale_staging(destination)
        staging = destination.sibling(staging_table_name(destination.table, day, digest))
        client = self.client()
        staging_table = bigquery.Table(staging.table_id, schema=staged_schema)
        staging_table.expires = dt.datetime.now(dt.timezone.utc) + STAGING_TTL
        self.rest.call("create_table (staging)", client.create_table, staging_table, exists_ok=True, retry=None)
        failure: BaseException | None = None
        try:
            load = self._load_staging(parquet_path, staging, staged_schema, digest)
            clock.add("load", time.perf_counter() - load_started)
            with clock.timing("transaction"):
                job_id = self.commit_staged(
                    destination, schema, partition_column, day, [staging], digest, constants, also=also
                )
        except BaseException as exc:
            failure = exc
            raise
        finally:
            with clock.timing("transaction"):  # its clean-up: the staging table goes
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
        if len(script) > MAX_SCRIPT_CHARS:  # BigQuery refuses it; the emulator would run it
            profile = sum(len(statement) for statement in also)
            raise TransactionTooLargeError(
                f"the transaction that replaces {day} in {destination} is {len(script):,} characters "
                f"({profile:,} of them the day's profile rows), over BigQuery's limit of {MAX_SCRIPT_CHARS:,}; "
                "expected a smaller profile: profile fewer columns (feature_columns) or set quality_profile=False "
                "(nothing was written)"
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
