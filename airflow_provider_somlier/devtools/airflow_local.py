"""Run a real Airflow 3 on loopback: API server, scheduler and DAG processor, LocalExecutor, SQLite.

Used by the demo and the end-to-end tests. Every process is started in its own
process group and stopped (TERM, then KILL) on exit, also when the caller fails.
Authentication is the simple auth manager with every user an admin: the instance
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_somlier.devtools.emulator import free_port
from airflow_provider_somlier.devtools.processes import log_tail, stop_pid

if TYPE_CHECKING:
    from airflow_provider_somlier.devtools.emulator import Emulator
    from airflow_provider_somlier.devtools.pidfiles import PidFiles

COMPONENTS = ("api-server", "scheduler", "dag-processor")
FINISHED = ("success", "failed")
# How often a wait asks the REST API for the runs (two requests): a run that finished is
# seen within this, at a few percent of a core for the API server.
WAIT_POLL_SECONDS = 0.5
SCHEDULER_RESTARTS = 2
SQLITE_BACKFILL_RACE = ("ObjectDeletedError", "StaleDataError")


# What the README tells a deployment to put in airflow_local_settings.py: the processes that
# run SoMLier tasks (given SOMLIER_PRELOAD=1) import its heavy modules once, before they fork tasks.
LOCAL_SETTINGS = """\
from airflow_provider_somlier.preload import preload_for_tasks

preload_for_tasks()
"""
PRELOAD_ENV = {"SOMLIER_PRELOAD": "1"}


def install_preload(home: Path) -> None:
    """Write ``$AIRFLOW_HOME/config/airflow_local_settings.py`` with the preload (Airflow puts that folder on its path).

    It only acts in processes given :data:`PRELOAD_ENV`: the LocalExecutor's scheduler, or the Celery workers.
    """
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)


class ComponentDiedError(RuntimeError):
    """A process the caller started (an Airflow component, a server) is gone: waiting on it is pointless."""


class NoProgressError(TimeoutError):
    """Runs stopped moving: no run or task instance changed state for the allowed time."""


def local_connections(emulator: Emulator, tracking_uri: str) -> dict[str, str]:
    """``google_cloud_default`` and ``mlflow_default`` as environment variables: the emulator, the registry."""
    return {
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": emulator.connection_uri_json(),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": tracking_uri}),
    }


REPARSE_SECONDS = 600


def airflow_env(home: Path, dags_folder: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for every Airflow process (and CLI call) of one local instance."""
    return {"AIRFLOW__SOMLIER__MODEL_CACHE_DIR": str(home / "model-cache")} | os.environ | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        # A writer waits up to 60 s for SQLite's lock (5 s by default), so fewer API calls fail
        # on it. (A backfill POST can still fail on the lock at once; see check_alive.)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # New DAG files are parsed as soon as the folder is listed (every 5 s), and a file whose
        # modification time is newer than its last parse at once (Airflow sorts by mtime); an
        # unchanged file is parsed again only after REPARSE_SECONDS. Parsing every file every
        # 5 s cost a third of a core per Airflow for a handful of files on these 2 cores.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(REPARSE_SECONDS),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # SQLite and two busy cores: an API call from a task may wait on the database lock for
        # longer than the default 5 s; a timed-out call fails the attempt.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__API_AUTH__JWT_SECRET": "somlier-local-only",
        "AIRFLOW__API__SECRET_KEY": "somlier-local-only",
        **(extra or {}),
    }


@dataclass
class LocalAirflow:
    """A running set of Airflow processes sharing one home and configuration.

    ``components`` are started in order; each runs ``airflow <commands[name]>`` (by default
    ``airflow <name>``) with ``env`` plus its own ``component_env`` (the Celery stack gives
    each worker its name this way).
    """

    home: Path
    port: int
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    pids: PidFiles | None = None
    restarts: int = 0
    components: tuple[str, ...] = COMPONENTS
    commands: dict[str, list[str]] = field(default_factory=dict)
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, check=check)

    def session(self) -> requests.Session:
        """A REST session with a bearer token (all-admins mode hands one out without a password).

        An idempotent call (GET, PATCH of a flag) the API server is too busy to answer in
        time is sent again, up to four times: on a loaded machine one slow answer is not a
        failure. Anything that waits on Airflow still bounds the whole wait itself.
        """
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        session = requests.Session()
        retry = Retry(total=4, connect=4, read=4, status=0, backoff_factor=0.5,
                      allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"PATCH"})
        session.mount("http://", HTTPAdapter(max_retries=retry))
        token = session.get(f"{self.url}/auth/token", timeout=10).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def start(self, component: str) -> subprocess.Popen:
        """Start one component in its own process group, appending to its log."""
        log = open(self.home / "logs" / f"{component}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", *self.commands.get(component, [component])],
            env=self.env | self.component_env.get(component, {}), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        if self.pids is not None:
            self.pids.record(f"airflow-{component}", process.pid)
        return process

    def check_alive(self) -> None:
        """Raise :class:`ComponentDiedError` naming the first component that has exited, with its log.

        One exception, as a deployment's process manager makes it: a scheduler that exited
        with code 1 on Airflow 3.3's SQLite backfill race (its log ends in
        ``ObjectDeletedError``/``StaleDataError``: a backfill POST that hit the database lock
        deleted runs the scheduler held) is started again, at most ``SCHEDULER_RESTARTS``
        times, and says so. A scheduler killed or failing otherwise is reported as dead.
        """
        for index, (component, process) in enumerate(zip(self.components, self.processes)):
            if process.poll() is not None:
                log = self.home / "logs" / f"{component}.log"
                if (component == "scheduler" and process.returncode == 1 and self.restarts < SCHEDULER_RESTARTS
                        and any(race in log_tail(log, 60) for race in SQLITE_BACKFILL_RACE)):
                    self.restarts += 1
                    print(f"    the Airflow scheduler hit Airflow's SQLite backfill race (see {log}); "
                          "started again", flush=True)
                    self.processes[index] = self.start(component)
                    continue
                raise ComponentDiedError(
                    f"Airflow {component} (pid {process.pid}) exited with code {process.returncode}; "
                    f"last lines of {log}:\n{log_tail(log, 15)}"
                )

    def restart_dead(self) -> list[str]:
        """Start again every component that has exited, as a deployment's process manager does; return their names.

        For outages on purpose (the metadata database or the broker taken away): a component
        that gave up on them is started again once they are back. Anything else should fail
        by name (:meth:`check_alive`).
        """
        restarted = []
        for index, (component, process) in enumerate(zip(self.components, self.processes)):
            if process.poll() is not None:
                if self.pids is not None:
                    self.pids.forget(f"airflow-{component}")
                self.processes[index] = self.start(component)
                restarted.append(component)
        return restarted

    def backfill(
        self, session: requests.Session, dag_id: str, from_date: str, to_date: str, *, max_active_runs: int = 3,
        timeout: float = 120,
    ) -> dict:
        """Create a backfill of ``from_date``..``to_date``, a range holding no run yet; return it (the API's JSON).

        Never touches a run that exists: a backfill over runs the scheduler is finishing can
        crash the scheduler on SQLite (Airflow 3.3: ``ObjectDeletedError`` when reprocessing,
        ``StaleDataError`` even without), so a range that holds runs is refused by name
        (``ValueError``); to run a finished day again, clear it. Idempotent: a POST that failed
        after creating the backfill (a 503 while SQLite is locked, a timeout) is not sent again
        once the backfill exists. A 409 (the DAG's previous backfill not yet marked complete)
        is waited out for ``timeout``.
        """
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date, "reprocess_behavior": "none",
                "max_active_runs": max_active_runs}

        def find() -> dict | None:
            existing = self._backfill_of(session, dag_id, from_date, to_date)
            if existing is None:
                inside = self._runs_between(session, dag_id, from_date, to_date)
                if inside:
                    raise ValueError(
                        f"backfill of {dag_id} {from_date}..{to_date} would cover existing run(s) {inside}; "
                        "backfill only days without runs and clear the others"
                    )
            return existing

        return self._create_once(session, f"backfill of {dag_id} {from_date}..{to_date}", find,
                                 f"{self.url}/api/v2/backfills", body, lambda created: created, timeout)

    def trigger(self, session: requests.Session, dag_id: str, logical_date: str, *, timeout: float = 120) -> str:
        """Create one run of ``dag_id`` for ``logical_date`` and return its run id; idempotent.

        On SQLite the API server answers a POST with ``500 Database error`` when its write
        meets the scheduler's (SQLite's busy wait does not cover a read turning into a
        write). The run is then looked up before the POST is sent again, so a POST whose
        answer was lost never makes a second run, and a 409 (the run exists) returns it.
        """
        return self._create_once(
            session, f"run of {dag_id} at {logical_date}", lambda: self._run_at(session, dag_id, logical_date),
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date},
            lambda created: created["dag_run_id"], timeout,
        )

    def _create_once(
        self, session: requests.Session, what: str, find: Callable[[], Any], url: str, body: dict,
        created: Callable[[dict], Any], timeout: float,
    ) -> Any:
        """POST ``body`` to ``url`` until it is created, and return it; ``find()`` first looks for what an
        earlier POST made, so a POST whose answer was lost (or an error after the write) never creates twice.
        Errors a busy SQLite or a restarting server gives (500, 502, 503, 504, 409, no answer) are retried
        until ``timeout``; a component that died fails by name at once."""
        deadline = time.monotonic() + timeout
        while True:
            existing = find()
            if existing is not None:
                return existing
            try:
                response = session.post(url, json=body, timeout=30)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code == 200:
                return created(response.json())
            retriable = response is None or response.status_code in (409, 500, 502, 503, 504)
            if not retriable or time.monotonic() > deadline:
                detail = "no answer" if response is None else f"{response.status_code} {response.text[:500]}"
                raise RuntimeError(f"{what} refused: {detail}")
            self.check_alive()
            time.sleep(1)

    def _run_at(self, session: requests.Session, dag_id: str, logical_date: str) -> str | None:
        response = session.get(f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
                               params={"logical_date_gte": logical_date, "logical_date_lte": logical_date}, timeout=30)
        if response.status_code != 200:
            return None
        runs = response.json()["dag_runs"]
        return runs[0]["dag_run_id"] if runs else None

    def _runs_between(self, session: requests.Session, dag_id: str, from_date: str, to_date: str) -> list[str]:
        runs = session.get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
            params={"logical_date_gte": from_date, "logical_date_lte": to_date, "limit": 100}, timeout=30,
        ).json()["dag_runs"]
        return sorted(r["dag_run_id"] for r in runs)

    def _backfill_of(self, session: requests.Session, dag_id: str, from_date: str, to_date: str) -> dict | None:
        response = session.get(f"{self.url}/api/v2/backfills", params={"dag_id": dag_id, "limit": 100}, timeout=30)
        if response.status_code != 200:
            return None

        def same(when: str | None, wanted: str) -> bool:
            return when is not None and dt.datetime.fromisoformat(when) == dt.datetime.fromisoformat(wanted)

        for backfill in response.json().get("backfills", []):
            if same(backfill.get("from_date"), from_date) and same(backfill.get("to_date"), to_date):
                return backfill
        return None

    def wait_runs(
        self, session: requests.Session, dag_id: str, count: int, *, no_progress_seconds: float = 300,
        watch: Callable[[], None] | None = None, on_progress: Callable[[str], None] | None = None,
    ) -> list[dict]:
        """Wait until ``dag_id`` has at least ``count`` runs and all have finished; return them.

        Follows progress rather than a fixed deadline: it gives up (:class:`NoProgressError`)
        only when no run and no task instance changed state for ``no_progress_seconds`` (a
        task waiting out its retry delay is progress to come, so the limit should exceed the
        DAG's retry delay). A dead component fails it at once (:class:`ComponentDiedError`),
        as does ``watch()`` raising for the caller's own servers.
        """
        last_change = time.monotonic()
        seen: tuple = ()
        while True:
            self.check_alive()
            if watch is not None:
                watch()
            try:
                runs = session.get(f"{self.url}/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100},
                                   timeout=30).json()["dag_runs"]
                tasks = session.get(
                    f"{self.url}/api/v2/dags/{dag_id}/dagRuns/~/taskInstances", params={"limit": 1000}, timeout=30
                ).json().get("task_instances", [])
            except (requests.RequestException, ValueError, KeyError):
                # An API server slow to answer on a busy machine is no progress, not a failure:
                # the no-progress limit below still ends the wait, a dead component ends it at once.
                if time.monotonic() - last_change > no_progress_seconds:
                    raise
                time.sleep(2)
                continue
            state = (
                tuple(sorted((r["dag_run_id"], r["state"]) for r in runs)),
                tuple(sorted((t["dag_run_id"], t["task_id"], t.get("map_index"), t["state"], t.get("try_number")) for t in tasks)),
            )
            finished = [r for r in runs if r["state"] in FINISHED]
            if state != seen:
                seen, last_change = state, time.monotonic()
                if on_progress is not None:
                    on_progress(f"{len(finished)}/{max(count, len(runs))} runs finished")
            if len(runs) >= count and len(finished) == len(runs):
                return runs
            if time.monotonic() - last_change > no_progress_seconds:
                stuck = sorted({(t["dag_run_id"], t["task_id"], t["state"]) for t in tasks if t["state"] not in FINISHED})
                raise NoProgressError(
                    f"{dag_id}: nothing changed for {no_progress_seconds:.0f} s with {len(finished)}/{len(runs)} runs "
                    f"finished; unfinished task instances: {stuck[:10]}; logs in {self.home / 'logs'}"
                )
            time.sleep(WAIT_POLL_SECONDS)


def _wait_healthy(airflow: LocalAirflow, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check_alive()
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
    preload: bool = True,
) -> Iterator[LocalAirflow]:
    """Migrate the metadata DB, start the three components, yield once healthy, stop them all.

    Each component is recorded in ``pids`` as ``airflow-<component>`` from its start to its stop.
    ``preload``: the scheduler, whose LocalExecutor forks the task processes, imports what
    SoMLier tasks use once (``airflow_provider_somlier.preload``), as the README advises.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    port = port or free_port()
    if preload:
        install_preload(home)
    airflow = LocalAirflow(home=home, port=port, env=airflow_env(home, dags_folder, port, extra_env), pids=pids,
                           component_env={"scheduler": PRELOAD_ENV} if preload else {})
    airflow.cli("db", "migrate")
    with components_running(airflow, lambda: _wait_healthy(airflow, timeout)):
        yield airflow


@contextlib.contextmanager
def components_running(airflow: LocalAirflow, wait_ready: Callable[[], None]) -> Iterator[LocalAirflow]:
    """Start ``airflow.components`` in order, yield once ``wait_ready()`` returns, stop them all (TERM, then KILL).

    Each component is recorded in ``airflow.pids`` as ``airflow-<component>`` from its start to its stop.
    """
    pids = airflow.pids
    try:
        for component in airflow.components:
            airflow.processes.append(airflow.start(component))
        wait_ready()
        yield airflow
    finally:
        # Every component is stopped whatever happens while stopping another (an error, a signal).
        interrupted: BaseException | None = None
        # Task processes run in process groups of their own (Airflow's supervisor puts each
        # task runner in one): noted now, killed below if stopping their component left them.
        descendants = [child for process in airflow.processes for child in _descendants(process.pid)]
        for process in airflow.processes:  # all at once: each may take seconds to finish its shutdown
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        for component, process in zip(airflow.components, airflow.processes):
            try:
                stop_pid(process.pid, timeout=15)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
                if pids is not None:
                    pids.forget(f"airflow-{component}")
            except BaseException as exc:  # noqa: BLE001 - re-raised once all are stopped
                interrupted = interrupted or exc
                stop_pid(process.pid, timeout=1)
        for child in descendants:
            with contextlib.suppress(Exception):
                if child.is_running():
                    child.kill()
        if interrupted is not None:
            raise interrupted


def _descendants(pid: int) -> list:
    """Every live descendant of ``pid`` (``psutil.Process`` objects, which guard against recycled pids)."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid``'s process group and every descendant, wherever its group: a machine lost. Returns the pids."""
    children = _descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(Exception):
            child.kill()
    return [pid, *(child.pid for child in children)]
