"""Run a real Airflow 3 on loopback: API server, scheduler and DAG processor, LocalExecutor, SQLite.

Used by the demo and the end-to-end tests. Every process is started in its own
process group and stopped (TERM, then KILL) on exit, also when the caller fails.
Authentication is the simple auth manager with every user an admin: the instance
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from airflow_provider_somlier.devtools.emulator import free_port, stop_pid

if TYPE_CHECKING:
    from airflow_provider_somlier.devtools.emulator import Emulator
    from airflow_provider_somlier.devtools.pidfiles import PidFiles

COMPONENTS = ("api-server", "scheduler", "dag-processor")


def local_connections(emulator: Emulator, tracking_uri: str) -> dict[str, str]:
    """``google_cloud_default`` and ``mlflow_default`` as environment variables: the emulator, the registry."""
    return {
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": emulator.connection_uri_json(),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": tracking_uri}),
    }


def airflow_env(home: Path, dags_folder: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for every Airflow process (and CLI call) of one local instance."""
    return os.environ | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__API_AUTH__JWT_SECRET": "somlier-local-only",
        "AIRFLOW__API__SECRET_KEY": "somlier-local-only",
        **(extra or {}),
    }


@dataclass
class LocalAirflow:
    home: Path
    port: int
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, check=check)

    def session(self) -> requests.Session:
        """A REST session with a bearer token (all-admins mode hands one out without a password)."""
        session = requests.Session()
        token = session.get(f"{self.url}/auth/token", timeout=10).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def create_backfill(self, session: requests.Session, body: dict, attempts: int = 10) -> requests.Response:
        """POST a backfill; on SQLite the API answers 503 while the scheduler holds the database lock."""
        for attempt in range(1, attempts + 1):
            response = session.post(f"{self.url}/api/v2/backfills", json=body, timeout=30)
            if response.status_code != 503 or "Database is locked" not in response.text or attempt == attempts:
                return response
            time.sleep(1)
        raise AssertionError("unreachable")


def _wait_healthy(airflow: LocalAirflow, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in airflow.processes:
            if process.poll() is not None:
                raise RuntimeError(f"an Airflow process exited with {process.returncode}; logs in {airflow.home / 'logs'}")
        try:
            health = requests.get(f"{airflow.url}/api/v2/monitor/health", timeout=2).json()
            if health.get("scheduler", {}).get("status") == "healthy" and health.get("dag_processor", {}).get("status") == "healthy":
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"Airflow at {airflow.url} was not healthy within {timeout:.0f}s")


@contextlib.contextmanager
def running_airflow(
    home: Path,
    dags_folder: Path,
    *,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 180,
    pids: PidFiles | None = None,
) -> Iterator[LocalAirflow]:
    """Migrate the metadata DB, start the three components, yield once healthy, stop them all.

    Each component is recorded in ``pids`` as ``airflow-<component>`` from its start to its stop.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    port = port or free_port()
    airflow = LocalAirflow(home=home, port=port, env=airflow_env(home, dags_folder, port, extra_env))
    airflow.cli("db", "migrate")
    try:
        for component in COMPONENTS:
            log = open(home / "logs" / f"{component}.log", "ab")  # noqa: SIM115 - closed with the process
            airflow.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow", component], env=airflow.env, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            )
            if pids is not None:
                pids.record(f"airflow-{component}", airflow.processes[-1].pid)
        _wait_healthy(airflow, timeout)
        yield airflow
    finally:
        for component, process in zip(COMPONENTS, airflow.processes):
            stop_pid(process.pid, timeout=15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            if pids is not None:
                pids.forget(f"airflow-{component}")
