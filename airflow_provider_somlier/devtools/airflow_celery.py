"""A production-shaped Airflow on loopback: PostgreSQL metadata, Redis broker, CeleryExecutor, two workers.

The settings are those of Airflow's official Docker Compose file and Helm chart
(``AIRFLOW__CORE__EXECUTOR=CeleryExecutor``, ``AIRFLOW__CELERY__BROKER_URL``,
``AIRFLOW__CELERY__RESULT_BACKEND``, ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``), started as
processes instead of containers: a PostgreSQL server and a Redis server each on a free
port with their data under the caller's folder, the API server, scheduler, DAG processor
and triggerer, and the Celery workers ``worker-a`` and ``worker-b``. Each worker consumes
the default queue and a queue named after itself, and each task instance it runs reports
the worker's name as its hostname (``[core] hostname_callable``), so a run shows which
worker ran which shard and a task routed with ``queue="worker-b"`` runs on worker-b only.

One call starts everything (:func:`running_celery_airflow`), leaving it stops everything
(every process group, TERM then KILL, also on an error or a signal), and each process is
recorded in the caller's pid files while it runs. :meth:`CeleryAirflow.check_alive` fails
by name when any of them died.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from airflow_provider_somlier.devtools.airflow_local import (
    COMPONENTS,
    PRELOAD_ENV,
    ComponentDiedError,
    LocalAirflow,
    airflow_env,
    components_running,
    install_preload,
    kill_tree,
)
from airflow_provider_somlier.devtools.emulator import free_port
from airflow_provider_somlier.devtools.processes import log_tail
from airflow_provider_somlier.devtools.postgres_server import running_postgres
from airflow_provider_somlier.devtools.redis_server import running_redis

if TYPE_CHECKING:
    from airflow_provider_somlier.devtools.kubernetes_api import KubernetesApi
    from airflow_provider_somlier.devtools.pidfiles import PidFiles
    from airflow_provider_somlier.devtools.postgres_server import PostgresServer
    from airflow_provider_somlier.devtools.redis_server import RedisServer

WORKERS = ("worker-a", "worker-b")
DEFAULT_QUEUE = "default"
WORKER_HOSTNAME_ENV = "SOMLIER_WORKER_HOSTNAME"
# How long a task instance whose process vanished (its worker killed) stays "running" before
# the scheduler fails it and its retry goes to a live worker. Airflow's default is 300 s.
TASK_HEARTBEAT_TIMEOUT_SECONDS = 30
TASK_QUEUED_TIMEOUT_SECONDS = 180
TASK_QUEUED_TIMEOUT_CHECK_SECONDS = 15
# A scheduler that died with the metadata database leaves the tasks it queued to the one started
# after it, which takes them over at its orphan check once the dead one's heartbeat is older than
# the health threshold (30 s, Airflow's default). Airflow checks every 300 s by default: a task
# whose start the outage lost would wait that long before the queued timeout could count for it.
ORPHANED_TASKS_CHECK_SECONDS = 30
SCHEDULER_HEALTH_CHECK_THRESHOLD_SECONDS = 30
# Celery retries storing a task's result on the database's connection errors, backing off up to
# 10 s between tries: ~3 min in all, then the task's slot is given back.
RESULT_STORE_RETRIES = {"result_backend_always_retry": True, "result_backend_max_retries": 20,
                        "result_backend_max_sleep_between_retries_ms": 10_000}
# The longest a task whose start an outage lost stays "queued" before the scheduler sends it again.
LOST_TASK_REQUEUE_SECONDS = (ORPHANED_TASKS_CHECK_SECONDS + SCHEDULER_HEALTH_CHECK_THRESHOLD_SECONDS
                             + TASK_QUEUED_TIMEOUT_SECONDS + TASK_QUEUED_TIMEOUT_CHECK_SECONDS)


class StackNotReadyError(TimeoutError):
    """A component of the stack did not become ready in time; the message names it and its log."""


@dataclass
class CeleryAirflow:
    """The running stack: the Airflow processes (``airflow``) and the servers they depend on."""

    airflow: LocalAirflow
    postgres: PostgresServer
    redis: RedisServer
    workers: tuple[str, ...]
    kubernetes: KubernetesApi | None = None  # with the KubernetesExecutor beside Celery

    @property
    def url(self) -> str:
        return self.airflow.url

    @property
    def home(self) -> Path:
        return self.airflow.home

    def session(self) -> requests.Session:
        return self.airflow.session()

    def check_alive(self) -> None:
        """Raise :class:`ComponentDiedError` naming the first process of the stack that has exited."""
        self.postgres.check_alive()
        self.redis.check_alive()
        self.airflow.check_alive()

    def worker_pid(self, name: str) -> int:
        """The pid (and process group) of worker ``name``'s main process."""
        return self.airflow.processes[self.airflow.components.index(name)].pid

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL worker ``name`` as if its machine were lost: its process group and every task process under it.

        Airflow's supervisor runs each task in a process group of its own, so killing the
        worker's group alone would leave the task running without a worker.
        """
        return kill_tree(self.worker_pid(name))

    def backfill(self, session: requests.Session, dag_id: str, from_date: str, to_date: str, **kwargs) -> dict:
        return self.airflow.backfill(session, dag_id, from_date, to_date, **kwargs)

    def trigger(self, session: requests.Session, dag_id: str, logical_date: str, **kwargs) -> str:
        return self.airflow.trigger(session, dag_id, logical_date, **kwargs)

    def wait_runs(self, session: requests.Session, dag_id: str, count: int, **kwargs) -> list[dict]:
        """:meth:`LocalAirflow.wait_runs`, also failing by name when PostgreSQL or Redis died."""
        watch = kwargs.pop("watch", None)

        def watch_all() -> None:
            self.postgres.check_alive()
            self.redis.check_alive()
            if watch is not None:
                watch()

        return self.airflow.wait_runs(session, dag_id, count, watch=watch_all, **kwargs)


def hostname() -> str:
    """``[core] hostname_callable`` of the stack: the worker's name in a worker (and its tasks), the pod's
    in a KubernetesExecutor pod (Kubernetes sets ``HOSTNAME`` there), else the host's.

    Both workers and every pod run on one machine, so the host name alone cannot tell them apart.
    """
    import socket

    if os.environ.get(WORKER_HOSTNAME_ENV):
        return os.environ[WORKER_HOSTNAME_ENV]
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("HOSTNAME"):
        return os.environ["HOSTNAME"]
    return socket.getfqdn()


def celery_env(
    home: Path, dags_folder: Path, port: int, postgres: PostgresServer, redis: RedisServer, *,
    concurrency: int, extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of every process of the stack: the official image's settings, on loopback ports."""
    return airflow_env(home, dags_folder, port, {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.hostname",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
        "AIRFLOW__CELERY__BROKER_URL": redis.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": postgres.celery_result_backend,
        # A task that ends while the database is down (its supervisor could not report the start)
        # stores its result once the database is back, instead of losing it: the scheduler then
        # sees the failure and retries the task at once, not after TASK_QUEUED_TIMEOUT_SECONDS.
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps(RESULT_STORE_RETRIES),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL": "False",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
        # Ports of the log servers are the machine's to share: free ones, never the defaults.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # A task whose start the database outage lost (its process killed by its supervisor, its
        # Celery result never stored) stays "queued"; the scheduler fails it after this long and
        # its retry runs it (Airflow's default, 600 s, outlasts any wait here). Above the longest
        # wait for a free worker slot in a 7-day backfill on 2 x 2 slots.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(TASK_QUEUED_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": str(TASK_QUEUED_TIMEOUT_CHECK_SECONDS),
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(ORPHANED_TASKS_CHECK_SECONDS),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": str(SCHEDULER_HEALTH_CHECK_THRESHOLD_SECONDS),
        # PostgreSQL takes concurrent writers: the SQLite lock waits of the LocalExecutor set-up do not apply.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        **(extra or {}),
    })


def _wait_ready(stack: CeleryAirflow, timeout: float) -> None:
    """The API server answers, scheduler, DAG processor and triggerer report healthy, each worker said ``ready``."""
    airflow = stack.airflow
    deadline = time.monotonic() + timeout
    waiting_for = ["the API server"]
    while time.monotonic() < deadline:
        stack.check_alive()
        waiting_for = []
        try:
            health = requests.get(f"{airflow.url}/api/v2/monitor/health", timeout=2).json()
            waiting_for += [name for name in ("scheduler", "dag_processor", "triggerer")
                            if health.get(name, {}).get("status") != "healthy"]
        except (requests.RequestException, ValueError):
            waiting_for.append("the API server")
        for worker in stack.workers:
            if f"{worker}@" not in log_tail(airflow.home / "logs" / f"{worker}.log", 200) or " ready." not in log_tail(
                    airflow.home / "logs" / f"{worker}.log", 200):
                waiting_for.append(worker)
        if not waiting_for:
            return
        time.sleep(1)
    raise StackNotReadyError(
        f"the Celery Airflow at {airflow.url} was not ready within {timeout:.0f} s; still waiting for "
        f"{', '.join(waiting_for)} (logs in {airflow.home / 'logs'})"
    )


@contextlib.contextmanager
def running_celery_airflow(
    state: Path,
    dags_folder: Path,
    *,
    workers: tuple[str, ...] = WORKERS,
    concurrency: int = 2,
    extra_env: dict[str, str] | None = None,
    timeout: float = 240,
    pids: PidFiles | None = None,
    kubernetes: bool = False,
) -> Iterator[CeleryAirflow]:
    """Start PostgreSQL, Redis, migrate, start Airflow's four components and the workers; yield when all are ready.

    Everything lives under ``state`` (``postgres/``, ``redis/``, ``airflow/`` with its
    ``logs/``). Each worker ``name`` consumes the queues ``default`` and ``name``, runs
    ``concurrency`` task slots and is the ``hostname`` of the task instances it runs.
    ``kubernetes`` adds the KubernetesExecutor (``devtools.airflow_kubernetes``): tasks that
    name it run in pods of the local Kubernetes API stand-in (``state/kubernetes/``), each a
    process whose ``hostname`` is its pod's name.
    """
    from airflow_provider_somlier.devtools.airflow_kubernetes import (
        EXECUTORS,
        executor_settings,
        image_environment,
        running_kubernetes_api,
    )

    home = state / "airflow"
    (home / "logs").mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as servers:
        postgres = servers.enter_context(running_postgres(state, pids=pids))
        redis = servers.enter_context(running_redis(state / "redis", pids=pids))
        cluster = servers.enter_context(running_kubernetes_api(state / "kubernetes", pids=pids)) if kubernetes else None
        if cluster is not None:
            extra_env = {"AIRFLOW__CORE__EXECUTOR": EXECUTORS,
                         **executor_settings(cluster, state / "kubernetes"), **(extra_env or {})}
        port = free_port()
        env = celery_env(home, dags_folder, port, postgres, redis, concurrency=concurrency, extra=extra_env)
        if cluster is not None:
            cluster.environment = image_environment(env)
        airflow = LocalAirflow(
            home=home, port=port, env=env, pids=pids,
            components=(*COMPONENTS, "triggerer", *workers),
            commands={
                "triggerer": ["triggerer", "--skip-serve-logs"],
                **{name: ["celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", f"{DEFAULT_QUEUE},{name}",
                          "--concurrency", str(concurrency), "--skip-serve-logs", "--without-mingle",
                          "--without-gossip"] for name in workers},
            },
            component_env={name: {WORKER_HOSTNAME_ENV: name, **PRELOAD_ENV} for name in workers},
        )
        install_preload(home)  # the workers import what SoMLier tasks use once, before they fork them
        migrated = airflow.cli("db", "migrate", check=False)
        if migrated.returncode:
            raise ComponentDiedError(f"airflow db migrate on {postgres.url} failed: {migrated.stderr[-3000:]}")
        stack = CeleryAirflow(airflow=airflow, postgres=postgres, redis=redis, workers=workers, kubernetes=cluster)
        with components_running(airflow, lambda: _wait_ready(stack, timeout)):
            try:
                yield stack
            finally:
                if cluster is not None:  # first, so the executor's watcher process lets the scheduler exit
                    cluster.close_watches()
