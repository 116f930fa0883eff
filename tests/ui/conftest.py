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


@pytest.fixture(scope="session")
def seeded(emulator, bq_client, airflow_db) -> Seeded:
    from airflow_provider_somlier.devtools.sample_profiles import register_writer, write_profile_days

    dataset = f"{emulator.project}.ui_pages"
    bq_client.create_dataset(dataset, exists_ok=True)
    churn, ledger = f"{dataset}.churn_scores", f"{dataset}.ledger_scores"
    versions = {day: (1 if i < 10 else 2) for i, day in enumerate(DAYS)}
    verdicts = write_profile_days(bq_client, churn, DAYS, bad_days={BAD_DAY}, versions=versions)
    write_profile_days(bq_client, ledger, DAYS[:5], model_name="ledger")
    register_writer(churn, "ml_churn", "predict", "ml_bundle", "ml", DAYS)
    register_writer(ledger, "finance_ledger", "predict", "finance_bundle", "finance", DAYS[:5])
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
