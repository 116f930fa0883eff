"""Small helpers shared by the tests."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace


def run_context(logical_date: dt.datetime, dag_id: str = "test_dag", run_id: str | None = None) -> dict:
    """The parts of an Airflow task context the operator reads."""
    run_id = run_id or f"manual__{logical_date.isoformat()}"
    return {
        "ti": SimpleNamespace(dag_id=dag_id, task_id="predict", try_number=1),
        "run_id": run_id,
        "logical_date": logical_date,
        "dag_run": SimpleNamespace(run_after=logical_date, run_id=run_id),
    }


def rows_per_day(client, table_id: str) -> dict[str, int]:
    query = f"SELECT CAST(target_date AS STRING) AS d, COUNT(*) AS n FROM `{table_id}` GROUP BY d ORDER BY d"
    return {row.d: row.n for row in client.query(query).result()}


def staging_tables(client, destination: str) -> list[str]:
    """The staging tables of ``destination`` alone (other tests' leftovers share its dataset)."""
    from airflow_provider_somlier.hooks.bigquery_staging import is_staging_of

    dataset, table = destination.rsplit(".", 1)
    return [t.table_id for t in client.list_tables(dataset) if is_staging_of(t.table_id, table)]


def asset_events(uri: str, run_id: str) -> list[dict]:
    """The extras of the asset events ``run_id`` emitted for the asset at ``uri``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
        ).all()
        return [dict(e.extra) for e in events]


def load_dag_file(source: str, dag_id: str):
    """Write ``source`` as ``<dag_id>.py`` into the configured dags folder and return its DAG."""
    import importlib.util
    import os
    from pathlib import Path

    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"somlier_test_dag_{dag_id}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


_OFFLINE_DAG = """import datetime as dt

from airflow.sdk import DAG

from airflow_provider_somlier.operators import MLOpsOfflineOperator

with DAG({dag_id!r}, schedule={schedule!r}, start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
         catchup=False, default_args={default_args}) as dag:
    MLOpsOfflineOperator(task_id="predict", {arguments})
"""


def offline_dag_source(dag_id: str, *, schedule: str | None = None, default_args: str = "{}",
                       **operator_args: object) -> str:
    """A DAG file of one ``MLOpsOfflineOperator`` task ``predict``; ``default_args`` is Python source."""
    arguments = ", ".join(f"{name}={value!r}" for name, value in operator_args.items())
    return _OFFLINE_DAG.format(dag_id=dag_id, schedule=schedule, default_args=default_args, arguments=arguments)
