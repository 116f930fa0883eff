"""Reads of the ``<destination>__profile`` tables, and nothing else in the warehouse.

Every query names a table that came from a validated :class:`~airflow_provider_somlier.refs.TableRef`
(back-quoted, never request text) and passes days as query parameters. A profile table
is checked against SoMLier's schema before it is read, so a table that merely has the
right name is refused by name. The predictions themselves are never scanned: a page of
365 days reads 365 × (columns) small rows.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.quality.store import PROFILE_COLUMNS, profile_table_ref
from airflow_provider_somlier.ui.errors import NotAProfileError, WarehouseError

if TYPE_CHECKING:
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.refs import TableRef
    from airflow_provider_somlier.ui.settings import UISettings

_ALL_COLUMNS = ", ".join(f"`{name}`" for name in PROFILE_COLUMNS)
_LATEST_COLUMNS = ("target_date", "column_name", "role", "day_rows", "verdict", "failures", "model_name",
                   "model_version", "predicted_at", "airflow_run_id")
_SCHEMA_SECONDS = 60.0


class ProfileReader:
    """Parameterised reads of profile tables through one BigQuery connection (thread-safe, one client)."""

    def __init__(self, settings: UISettings, hook: SomlierBigQueryHook | None = None) -> None:
        self.settings = settings
        self._hook = hook
        self._lock = threading.Lock()
        self._checked: dict[str, float] = {}  # profile table id → when its schema was found right

    @property
    def hook(self) -> SomlierBigQueryHook:
        with self._lock:
            if self._hook is None:
                from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

                self._hook = SomlierBigQueryHook(gcp_conn_id=self.settings.gcp_conn_id, location=self.settings.location)
            return self._hook

    # -- the queries ----------------------------------------------------------------------------
    def latest_day(self, destination: TableRef) -> list[dict[str, Any]]:
        """The rows (one per column, few fields) of the destination's latest profiled day; [] when none."""
        table = self.profile_table(destination)
        columns = ", ".join(f"`{name}`" for name in _LATEST_COLUMNS)
        return self._query(
            f"latest day of {table}",
            f"SELECT {columns} FROM {table.sql} WHERE `target_date` = (SELECT MAX(`target_date`) FROM {table.sql})",
        )

    def latest_date(self, destination: TableRef) -> dt.date | None:
        """The destination's latest profiled day (None before the first)."""
        table = self.profile_table(destination)
        rows = self._query(f"latest date of {table}", f"SELECT MAX(`target_date`) AS `latest` FROM {table.sql}")
        return rows[0]["latest"] if rows else None

    def days_between(self, destination: TableRef, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        """The profile rows a timeline needs from ``start``..``end``, ordered by day.

        Those of the prediction columns (the day's figures are on every row; the quantiles
        come from the prediction's histogram) and of any column with a failed check: about
        one row a day instead of one per column, which is most of a year's page time.
        """
        table = self.profile_table(destination)
        return self._query(
            f"days {start}..{end} of {table}",
            f"SELECT {_ALL_COLUMNS} FROM {table.sql} WHERE `target_date` BETWEEN @start AND @end "
            "AND (`role` = 'prediction' OR `failures` != '[]') ORDER BY `target_date`, `column_name`",
            [("start", "DATE", start), ("end", "DATE", end)],
        )

    def day_with_baseline(self, destination: TableRef, day: dt.date, baseline_days: int) -> list[dict[str, Any]]:
        """The rows of ``day`` and of the latest ``baseline_days`` profiled days before it (a baseline)."""
        table = self.profile_table(destination)
        return self._query(
            f"day {day} of {table} and its baseline",
            f"SELECT {_ALL_COLUMNS} FROM {table.sql} WHERE `target_date` = @day OR `target_date` IN ("
            f"SELECT DISTINCT `target_date` FROM {table.sql} WHERE `target_date` < @day "
            f"ORDER BY `target_date` DESC LIMIT {int(baseline_days)}) ORDER BY `target_date`, `column_name`",
            [("day", "DATE", day)],
        )

    # -- the table -----------------------------------------------------------------------------
    def profile_table(self, destination: TableRef) -> TableRef:
        """The destination's profile table, once its schema is found to be SoMLier's (cached a minute)."""
        table = profile_table_ref(destination)
        checked = self._checked.get(table.table_id)
        if checked is not None and time.monotonic() - checked < _SCHEMA_SECONDS:
            return table
        from google.api_core.exceptions import GoogleAPICallError, NotFound

        from airflow_provider_somlier.errors import WarehouseUnavailableError

        hook = self.hook
        try:
            found = hook.rest.call(f"get_table {table}", hook.client().get_table, table.table_id, retry=None,
                                   deadline_seconds=self.settings.query_deadline_seconds)
        except NotFound:
            raise NotAProfileError(
                f"{destination} has no profile table {table.table}: it was written with quality_profile=False, "
                "or by a version of SoMLier without profiles"
            ) from None
        except (GoogleAPICallError, WarehouseUnavailableError) as exc:
            raise WarehouseError(f"could not read the schema of {table}: {exc}") from None
        have = {field.name: field.field_type for field in found.schema}
        wrong = [name for name, kind in PROFILE_COLUMNS.items()
                 if name not in have or _normal(have[name]) != _normal(kind)]
        if wrong:
            raise NotAProfileError(
                f"{table} is not a SoMLier profile table: column(s) {', '.join(wrong)} missing or of another type"
            )
        self._checked[table.table_id] = time.monotonic()
        return table

    def _query(self, step: str, sql: str, parameters: Sequence[tuple[str, str, Any]] = ()) -> list[dict[str, Any]]:
        from google.api_core.exceptions import GoogleAPICallError
        from google.cloud import bigquery

        from airflow_provider_somlier.errors import WarehouseUnavailableError

        hook = self.hook
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter(name, kind, value) for name, kind, value in parameters],
            use_legacy_sql=False,
        )
        deadline = self.settings.query_deadline_seconds
        try:
            job = hook.rest.call(f"{step} submit", hook.client().query, sql, job_config=config, retry=None,
                                 job_retry=None, deadline_seconds=deadline)
            rows = hook.rest.call(f"{step} result", job.result, retry=None, deadline_seconds=deadline)
            return [dict(row.items()) for row in rows]
        except (GoogleAPICallError, WarehouseUnavailableError) as exc:
            raise WarehouseError(f"BigQuery {step} failed: {exc}") from None


def _normal(kind: str) -> str:
    """Legacy and standard SQL names of one type compare equal (INTEGER/INT64, FLOAT/FLOAT64)."""
    return {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}.get(kind.upper(), kind.upper())
