"""Which destinations exist, which DAGs write them, and what those DAGs asked of the gate.

Read from Airflow's own metadata database (the API server's), never from the warehouse:

* a destination is a BigQuery table that a task has written through SoMLier, i.e. that
  has an asset event (``bigquery://project/dataset/table``) whose extra is SoMLier's
  (``target_date``, ``model_version`` …; see ``assets.py``) — so the pages list exactly the
  tables the provider writes, each with the DAGs and tasks that wrote it, and the
  authorization check (``auth.py``) knows whose DAG a table is;
* a task instance's Predictions view finds the table and day it wrote in the same events;
* the gate's thresholds of a day come from the serialized DAG of the task that wrote it
  (``quality_checks``, ``baseline`` are template fields, so Airflow keeps them).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.assets import EXTRA_KEYS

if TYPE_CHECKING:
    from airflow_provider_somlier.quality.gate import QualitySettings
    from airflow_provider_somlier.refs import TableRef
    from airflow_provider_somlier.ui.settings import UISettings

URI_PREFIX = "bigquery://"


@dataclass(frozen=True)
class Writer:
    """A task that has written a destination (the sharded group's commit, or the single task)."""

    dag_id: str
    task_id: str


@dataclass
class Destination:
    """A predictions table and the tasks whose asset events say they wrote it."""

    table: TableRef
    writers: set[Writer] = field(default_factory=set)
    last_event: dict[str, Any] = field(default_factory=dict)  # the extra of the newest event

    @property
    def table_id(self) -> str:
        return self.table.table_id

    @property
    def dag_ids(self) -> set[str]:
        return {writer.dag_id for writer in self.writers}

    def task_of(self, dag_id: str) -> str | None:
        """The task of ``dag_id`` that writes this table (the first by name if several do)."""
        tasks = sorted(w.task_id for w in self.writers if w.dag_id == dag_id)
        return tasks[0] if tasks else None


@dataclass(frozen=True)
class WrittenDay:
    """What one task instance wrote: a day of a destination."""

    table: TableRef
    target_date: dt.date


def table_of_uri(uri: str) -> TableRef | None:
    """``bigquery://project/dataset/table`` as a validated table ref (None for anything else)."""
    from airflow_provider_somlier.errors import InvalidRefError
    from airflow_provider_somlier.refs import parse_table_ref

    if not uri.startswith(URI_PREFIX):
        return None
    parts = uri[len(URI_PREFIX):].split("/")
    if len(parts) != 3:
        return None
    try:
        return parse_table_ref(".".join(parts))
    except InvalidRefError:
        return None


def is_somlier_extra(extra: Any) -> bool:
    """Whether an asset event's extra is the one SoMLier's tasks attach (``assets.EXTRA_KEYS``)."""
    return isinstance(extra, dict) and all(key in extra for key in EXTRA_KEYS)


class Catalog:
    """The destinations and their writers, read from Airflow's database and kept ``catalog_seconds``."""

    def __init__(self, settings: UISettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._destinations: dict[str, Destination] | None = None
        self._read_at = 0.0
        self._settings_cache: dict[tuple[str, str], tuple[float, tuple[QualitySettings, str]]] = {}

    def destinations(self) -> dict[str, Destination]:
        """Every destination SoMLier has written, by table id."""
        with self._lock:
            if self._destinations is None or time.monotonic() - self._read_at > self.settings.catalog_seconds:
                self._destinations = self._read_destinations()
                self._read_at = time.monotonic()
            return self._destinations

    def _read_destinations(self) -> dict[str, Destination]:
        from sqlalchemy import func, select

        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session

        with create_session() as session:
            latest = session.execute(
                select(AssetModel.uri, AssetEvent.source_dag_id, AssetEvent.source_task_id, func.max(AssetEvent.id))
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetModel.uri.like(f"{URI_PREFIX}%"), AssetEvent.source_dag_id.is_not(None),
                       AssetEvent.source_task_id.is_not(None))
                .group_by(AssetModel.uri, AssetEvent.source_dag_id, AssetEvent.source_task_id)
            ).all()
            ids = [row[3] for row in latest]
            extras = dict(session.execute(select(AssetEvent.id, AssetEvent.extra).where(AssetEvent.id.in_(ids))).all()) if ids else {}
        found: dict[str, Destination] = {}
        newest: dict[str, int] = {}
        for uri, dag_id, task_id, event_id in latest:
            table = table_of_uri(uri)
            extra = extras.get(event_id)
            if table is None or not is_somlier_extra(extra):
                continue
            destination = found.setdefault(table.table_id, Destination(table=table))
            destination.writers.add(Writer(dag_id, task_id))
            if event_id > newest.get(table.table_id, -1):
                newest[table.table_id] = event_id
                destination.last_event = dict(extra)
        return found

    def written_by(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> WrittenDay | None:
        """The destination and day a task instance wrote (its newest SoMLier asset event), or None."""
        from sqlalchemy import select

        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.execute(
                select(AssetModel.uri, AssetEvent.extra)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id,
                       AssetEvent.source_task_id == task_id, AssetEvent.source_map_index == map_index)
                .order_by(AssetEvent.id.desc())
            ).all()
        for uri, extra in rows:
            table = table_of_uri(uri)
            if table is not None and is_somlier_extra(extra):
                try:
                    return WrittenDay(table, dt.date.fromisoformat(str(extra["target_date"])))
                except ValueError:
                    continue
        return None

    def run_dags(self, run_ids: Iterable[str], dag_ids: Iterable[str]) -> dict[str, str]:
        """``run_id → dag_id`` for the runs of ``dag_ids`` among ``run_ids`` (for links to each run)."""
        from sqlalchemy import select

        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        wanted, dags = sorted(set(run_ids)), sorted(set(dag_ids))
        if not wanted or not dags:
            return {}
        found: dict[str, str] = {}
        with create_session() as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(
                    select(DagRun.run_id, DagRun.dag_id)
                    .where(DagRun.run_id.in_(wanted[start:start + 500]), DagRun.dag_id.in_(dags))
                ).all()
                found.update({run_id: dag_id for run_id, dag_id in rows})
        return found

    def quality_settings(self, dag_id: str | None, task_id: str | None) -> tuple[QualitySettings, str]:
        """The gate's settings of a writer task, and where they came from.

        Falls back to SoMLier's defaults (and says so) when the DAG is gone, the task is not
        SoMLier's, or a setting is a template only a run can render.
        """
        from airflow_provider_somlier.errors import QualitySettingError
        from airflow_provider_somlier.quality.gate import parse_settings

        if dag_id is None or task_id is None:
            return parse_settings(), "SoMLier's defaults (no DAG known for this day)"
        key = (dag_id, task_id)
        cached = self._settings_cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < max(self.settings.catalog_seconds, 30.0):
            return cached[1]
        try:
            from airflow.models.serialized_dag import SerializedDagModel
            from airflow.utils.session import create_session

            with create_session() as session:
                dag = SerializedDagModel.get_dag(dag_id, session=session)
            task = dag.get_task(task_id) if dag is not None else None
        except Exception:  # noqa: BLE001 - a DAG that cannot be read leaves the defaults, said so below
            task = None
        if task is None:
            result = parse_settings(), f"SoMLier's defaults ({dag_id}.{task_id} is not in Airflow's DAGs)"
        else:
            values = (getattr(task, "quality_checks", None), getattr(task, "baseline", "previous_days:7"),
                      getattr(task, "on_quality_failure", "fail"))
            try:
                result = parse_settings(*values), f"{dag_id}.{task_id}"
            except (QualitySettingError, TypeError, ValueError):
                result = parse_settings(), f"SoMLier's defaults ({dag_id}.{task_id} sets them with a template)"
        self._settings_cache[key] = (time.monotonic(), result)
        return result
