"""Staging tables: their names, the sweep of the ones killed runs left, the sharded commit's helpers.

A day is written through a private staging table (Parquet loaded into it, then one
transaction moves its rows into the destination). Its name says which destination and day
it belongs to, so a later run finds and drops what a killed one left; a shard's staging
name is the same on every retry of that shard, so a retry replaces it.

:class:`StagingTables` is a part of :class:`~airflow_provider_somlier.hooks.bigquery.SomlierBigQueryHook`
(it uses the hook's ``client()``, ``rest`` deadline and ``log``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import bigquery

    from airflow_provider_somlier.refs import TableRef

STAGING_PREFIX = "_somlier_staging_"
# Staging tables older than this are leftovers of killed runs (a live run's staging
# lives for seconds to minutes); every run drops its destination's.
STAGING_TTL = dt.timedelta(hours=24)
# Characters of the destination's name kept in a staging name; with the hash of the
# whole name and the suffixes a staging name stays within 208 characters for any
# destination: below BigQuery's limit (1,024) and the emulator's (255).
_STAGING_NAME_CHARS = 150
_LEGACY_STAGING_SUFFIX = r"_[0-9]{8}_[0-9a-f]{12}_[0-9a-f]{8}"


def shard_staging_table_name(destination_table: str, day: dt.date, plan_digest: str, shard: int) -> str:
    """The staging table of one shard of one plan: the same on every retry, so a retry replaces it."""
    return f"{staging_key(destination_table)}{day:%Y%m%d}_{plan_digest}_s{shard:04d}"


def read_copy_table_name(destination_table: str, day: dt.date, seed: str) -> str:
    """The table a run copies its day's rows into when the source is a view (see ``copy_rows_for_read``).

    Named under the destination's staging key, so the sweep drops one a killed run left; the
    same ``seed`` (a plan's) gives the same name, so a retried plan replaces its copy.
    """
    return f"{staging_key(destination_table)}{day:%Y%m%d}_{seed}_read"


# Table types the Storage Read API refuses ("non-table entities cannot be read"): their rows
# are copied into a table first. The emulator reads views directly; BigQuery does not.
NOT_READ_DIRECTLY = frozenset({"VIEW", "MATERIALIZED_VIEW", "EXTERNAL"})


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


class StagingTables:
    """The staging tables of a destination: load a shard's, count and drop a plan's, sweep stale ones."""

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

    def copy_rows_for_read(
        self, source: TableRef, source_type: str, columns: Sequence[str], row_restriction: str, into: TableRef
    ) -> None:
        """Copy ``columns`` of the ``source`` rows matching ``row_restriction`` into table ``into``.

        The Storage Read API reads tables only; a view's day is read from this copy (one
        query job, billed like any query of the view). ``into`` expires after a day and
        is a staging table of the destination (the sweep drops a leftover); the caller
        drops it when the day is read.
        """
        hours = int(STAGING_TTL.total_seconds() // 3600)
        select = ", ".join(f"`{column}`" for column in columns)
        self._query_rows(
            f"copy of the day's rows of {source} ({source_type}) into {into.table}",
            f"CREATE OR REPLACE TABLE {into.sql} "
            f"OPTIONS(expiration_timestamp=TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL {hours} HOUR)) "
            f"AS SELECT {select} FROM {source.sql} WHERE {row_restriction}",
            cancellable=True,
        )

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

    def drop_tables(self, refs: Sequence[TableRef]) -> None:
        """Drop ``refs`` (missing ones are fine): the staging tables of a committed plan."""
        for ref in refs:
            self.rest.call("delete_table (shard staging)", self.client().delete_table, ref.table_id, not_found_ok=True, retry=None)

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
