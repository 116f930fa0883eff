"""The Predictions app in-process, on the session's emulator and Airflow metadata database.

Profile tables are written by the real profiler, gate and store (``devtools/sample_profiles``);
Airflow's metadata holds what a SoMLier task leaves there (asset events, runs, DAGs in
bundles owned by teams). Requests carry JWTs of Airflow's simple auth manager: users of
the viewer role in team ``ml`` or ``finance``, whose DAG bundles the auth manager keeps
them to.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import pytest

DAYS = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(20)]
BAD_DAY = DAYS[-1]


@dataclass
class Seeded:
    churn: str  # table id written by ml_churn (team ml), with a bad day
    ledger: str  # table id written by finance_ledger (team finance)
    verdicts: dict


def _register(table_id: str, dag_id: str, task_id: str, bundle: str, team: str, days: list[dt.date]) -> None:
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.dagrun import DagRun
    from airflow.models.team import Team
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    project, dataset, table = table_id.split(".")
    with create_session() as session:
        owner = session.get(Team, team) or Team(name=team)
        session.add(owner)
        found = session.get(DagBundleModel, bundle) or DagBundleModel(name=bundle)
        found.teams = [owner]
        session.add(found)
        session.flush()
        if session.get(DagModel, dag_id) is None:
            session.add(DagModel(dag_id=dag_id, bundle_name=bundle, fileloc=f"/dags/{dag_id}.py"))
        uri = f"bigquery://{project}/{dataset}/{table}"
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == uri))
        if asset is None:
            asset = AssetModel(uri=uri, name=uri, group="asset")
            session.add(asset)
        session.flush()
        for day in days:
            run_id = f"scheduled__{day + dt.timedelta(days=1)}T00:00:00+00:00"
            logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), dt.timezone.utc)
            session.add(DagRun(dag_id=dag_id, run_id=run_id, run_type=DagRunType.SCHEDULED, logical_date=logical,
                               state=DagRunState.SUCCESS, run_after=logical))
            session.add(AssetEvent(asset_id=asset.id, source_dag_id=dag_id, source_task_id=task_id,
                                   source_run_id=run_id, source_map_index=-1,
                                   extra={"target_date": day.isoformat(), "model_name": "churn", "model_version": "1",
                                          "rows_written": 1000}))


@pytest.fixture(scope="session")
def seeded(emulator, bq_client, airflow_db) -> Seeded:
    from airflow_provider_somlier.devtools.sample_profiles import write_profile_days

    dataset = f"{emulator.project}.ui_pages"
    bq_client.create_dataset(dataset, exists_ok=True)
    churn, ledger = f"{dataset}.churn_scores", f"{dataset}.ledger_scores"
    versions = {day: (1 if i < 10 else 2) for i, day in enumerate(DAYS)}
    verdicts = write_profile_days(bq_client, churn, DAYS, bad_days={BAD_DAY}, versions=versions)
    write_profile_days(bq_client, ledger, DAYS[:5], model_name="ledger")
    _register(churn, "ml_churn", "predict", "ml_bundle", "ml", DAYS)
    _register(ledger, "finance_ledger", "predict", "finance_bundle", "finance", DAYS[:5])
    return Seeded(churn=churn, ledger=ledger, verdicts=verdicts)


@pytest.fixture(scope="session")
def pages_app(seeded):
    """Airflow's auth manager and a root app with the Predictions app mounted where the plugin mounts it."""
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "somlier-tests-only")
    from fastapi import FastAPI

    from airflow.api_fastapi.app import init_auth_manager
    from airflow_provider_somlier.ui.app import create_app
    from airflow_provider_somlier.ui.plugin import URL_PREFIX
    from airflow_provider_somlier.ui.settings import UISettings

    init_auth_manager()
    root = FastAPI()
    root.mount(URL_PREFIX, create_app(UISettings(catalog_seconds=0.0)))
    return root


def token_of(username: str, teams: list[str], role: str = "viewer") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role, teams=teams))


@pytest.fixture(scope="session")
def as_user(pages_app):
    """``as_user(teams)`` → a test client whose requests carry that viewer's JWT (None: no credentials)."""
    from fastapi.testclient import TestClient

    def client(teams: list[str] | None) -> TestClient:
        headers = {} if teams is None else {"Authorization": f"Bearer {token_of('u-' + '-'.join(teams), teams)}"}
        return TestClient(pages_app, headers=headers, raise_server_exceptions=False)

    return client
