"""One production-shaped Airflow for the whole test session: PostgreSQL, Redis, CeleryExecutor, worker-a and worker-b,
and the KubernetesExecutor beside it on the local Kubernetes API stand-in (for the DAGs that name it).

Started once (about half a minute) by the first test that asks for it, with every DAG
the Celery tests drive already in its dags folder, and stopped at the end of the session.
Runs are driven through the REST API, as a user would; every wait fails at once, by name,
when a process of the stack has died.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests

from airflow_provider_somlier.devtools.airflow_celery import LOST_TASK_REQUEUE_SECONDS
from airflow_provider_somlier.devtools.airflow_local import FINISHED

SHARDED_DAY = dt.date(2026, 11, 19)
SHARDED_DAY_ROWS = 16_000  # big enough for the warehouse to split the day into 4 streams
LOGICAL_DATE = "2026-11-20T03:00:00Z"  # 12:00 KST: the target day is 2026-11-19
NO_PROGRESS_SECONDS = 240  # a wait ends when nothing changed for this long (more than a retry delay)
# The daily DAG's first day with rows, run alone before the tests (README: the first event of a
# new destination's asset, emitted by runs finishing together, can make Airflow create the asset
# twice and fail the losing task). The day after the backfill's 11-14 .. 11-20.
FIRST_DAY_ALONE, FIRST_DAY_ALONE_LOGICAL_DATE = "2026-11-21", "2026-11-22T00:00:00Z"

SHARDED_DAG = """
import datetime as dt

from airflow.sdk import DAG

from airflow_provider_somlier.operators.sharded import sharded_offline

with DAG({dag_id!r}, schedule=None, start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc), catchup=False) as dag:
    sharded_offline(
        "predict", shards=2, model_ref={model_ref!r}, dataset_ref={features!r}, dataset_load_column="load_date",
        destination_table_ref={destination!r}, passthrough_columns=["row_id"],
        retries=2, retry_delay=dt.timedelta(seconds=3), retry_exponential_backoff=1.0,
    )
"""

DOWNSTREAM_DAG = """
import datetime as dt

from airflow.sdk import DAG, Asset, task

predictions = Asset({uri!r})

with DAG({dag_id!r}, schedule=[predictions], start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
         catchup=False) as dag:
    @task
    def report(*, triggering_asset_events=None):
        return sorted(event.extra["target_date"] for event in triggering_asset_events[predictions])

    report()
"""


@pytest.fixture(scope="session")
def celery_features(emulator, bq_client) -> str:
    from airflow_provider_somlier.devtools.sample_data import load_features

    table_id = f"{emulator.project}.features.celery_day"
    load_features(bq_client, table_id, [SHARDED_DAY], SHARDED_DAY_ROWS)
    return table_id


@pytest.fixture(scope="session")
def hang_model(registry, session_dir) -> tuple[str, object]:
    """``(model_ref, trigger)``: create the trigger file and the next ``predict`` anywhere hangs, once."""
    from tests.sharded.fail_once_model import register_fail_once

    trigger = session_dir / "celery-hang-one-shard"
    registered = register_fail_once(registry["uri"], "diabetes-celery-hang", str(trigger),
                                    (session_dir / "mlartifacts").as_uri(), hang=True)
    return f"diabetes-celery-hang/{registered.version}", trigger


def generated_dag(dag_id: str, features: str, destination: str, *extra: str,
                  model_ref: str = "diabetes-ridge@champion") -> str:
    """The DAG file ``somlier offline create_v2`` writes for these inputs."""
    from click.testing import CliRunner

    from airflow_provider_somlier.cli import main

    done = CliRunner().invoke(main, [
        "offline", "create_v2", model_ref, dag_id, "0 0 * * *", features.split(".", 1)[1],
        "load_date", destination.split(".", 1)[1], "--start_date", "2026-11-01", "--passthrough_columns", "row_id",
        *extra, "--dry_run",
    ], env={"SOMLIER_CONFIG": "/nonexistent"})
    assert done.exit_code == 0, done.stderr
    return done.stdout.split("\n# dry run:")[0]


class Dags:
    """The DAG ids of the session's stack and their destination tables."""

    SHARDED = "celery_generated_4_shards"
    ROUTED = "celery_routed_to_worker_b"
    DAILY = "celery_daily_backfill"
    DOWNSTREAM = "celery_downstream_of_daily"
    KILLED = "celery_worker_killed"
    REDIS = "celery_redis_outage"
    POSTGRES = "celery_postgres_outage"
    PODS = "celery_kubernetes_pods"


@pytest.fixture(scope="package")  # not the session's: idle, the stack costs a third of a core
def celery_stack(session_dir, emulator, registry, bq_client, features_table, celery_features, hang_model):
    """The running stack with every DAG parsed and unpaused: ``(stack, session, destinations)``."""
    from airflow_provider_somlier.devtools.airflow_celery import running_celery_airflow

    project = emulator.project
    bq_client.create_dataset(f"{project}.predictions", exists_ok=True)
    destinations = {dag: f"{project}.predictions.{dag}" for dag in vars(Dags).values()
                    if isinstance(dag, str) and dag.startswith("celery_")}
    dags = session_dir / "celery-dags"
    dags.mkdir()
    files = {
        Dags.SHARDED: generated_dag(Dags.SHARDED, celery_features, destinations[Dags.SHARDED], "--shards", "4"),
        Dags.ROUTED: generated_dag(Dags.ROUTED, celery_features, destinations[Dags.ROUTED], "--shards", "4",
                                   "--score_queue", "worker-b"),
        Dags.DAILY: generated_dag(Dags.DAILY, features_table, destinations[Dags.DAILY]),
        Dags.DOWNSTREAM: DOWNSTREAM_DAG.format(
            dag_id=Dags.DOWNSTREAM, uri=f"bigquery://{project}/predictions/{Dags.DAILY}"),
        Dags.KILLED: SHARDED_DAG.format(dag_id=Dags.KILLED, model_ref=hang_model[0], features=celery_features,
                                        destination=destinations[Dags.KILLED]),
        **{dag: SHARDED_DAG.format(dag_id=dag, model_ref="diabetes-ridge@champion", features=celery_features,
                                   destination=destinations[dag]) for dag in (Dags.REDIS, Dags.POSTGRES)},
        # generated, with the retry delay cut to 3 s (the generated default waits minutes for a warehouse)
        Dags.PODS: generated_dag(Dags.PODS, celery_features, destinations[Dags.PODS], "--shards", "2",
                                 "--score_executor", "KubernetesExecutor", "--score_cpu", "1", "--score_memory", "1Gi",
                                 model_ref=hang_model[0]).replace(
            '        shards=2,\n', '        shards=2,\n        retry_delay=datetime.timedelta(seconds=3),\n'
                                  '        retry_exponential_backoff=1.0,\n', 1),
    }
    assert "retry_delay=datetime.timedelta(seconds=3)" in files[Dags.PODS]  # the generated file's shape changed
    for dag_id, source in files.items():
        (dags / f"{dag_id}.py").write_text(source)

    with running_celery_airflow(session_dir / "celery-stack", dags, kubernetes=True) as stack:
        session = stack.session()
        deadline = time.monotonic() + 180
        for dag_id in files:
            while session.get(f"{stack.url}/api/v2/dags/{dag_id}", timeout=10).status_code != 200:
                stack.check_alive()
                assert time.monotonic() < deadline, f"{dag_id} was not parsed within 180 s"
                time.sleep(1)
            unpaused = session.patch(f"{stack.url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=10)
            assert unpaused.status_code == 200, unpaused.text
        wait_idle(stack, session)
        # Unpausing ran the daily DAG's latest interval, a day without rows: skipped, no asset event.
        first = trigger(stack, session, Dags.DAILY, FIRST_DAY_ALONE_LOGICAL_DATE)
        assert wait_run(stack, session, Dags.DAILY, first) == "success"
        wait_idle(stack, session)  # the downstream DAG's run for that event
        yield stack, session, destinations


def wait_idle(stack, session, timeout: float = 300) -> None:
    """Wait until no run of any DAG is queued or running.

    Unpausing a scheduled DAG runs its latest interval (the generated DAGs have a daily
    schedule). Left running, those runs hold worker slots while a test starts, and which
    worker takes a test's shards would depend on them.
    """
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        active = _get(session, f"{stack.url}/api/v2/dags/~/dagRuns", state=["queued", "running"], limit=100)
        if active is not None and active["total_entries"] == 0:
            return
        busy = sorted((r["dag_id"], r["state"]) for r in (active or {}).get("dag_runs", []))
        assert time.monotonic() < deadline, f"runs still active after {timeout:.0f} s: {busy}"
        time.sleep(1)


def trigger(stack, session, dag_id: str, logical_date: str = LOGICAL_DATE) -> str:
    return stack.airflow.trigger(session, dag_id, logical_date)


def _get(session, url: str, **params) -> dict | None:
    """GET as JSON; None while the API cannot answer (its database is away during an outage test)."""
    try:
        response = session.get(url, params=params, timeout=10)
    except requests.RequestException:
        return None
    return response.json() if response.status_code == 200 else None


def task_instances(stack, session, dag_id: str, run_id: str) -> list[dict]:
    found = _get(session, f"{stack.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)
    return found["task_instances"] if found else []


def shards(stack, session, dag_id: str, run_id: str) -> list[dict]:
    return sorted((ti for ti in task_instances(stack, session, dag_id, run_id) if ti["task_id"] == "predict.score"),
                  key=lambda ti: ti["map_index"])


def wait_run(stack, session, dag_id: str, run_id: str, *, restart_dead: bool = False) -> str:
    """Wait until the run finished; return its state. Ends when nothing changed for ``NO_PROGRESS_SECONDS``.

    A dead process of the stack fails the wait at once by name, unless ``restart_dead``
    (an outage test), where components that gave up are started again as a deployment's
    process manager would, and a task whose start the outage lost may stay ``queued`` until
    a new scheduler took it over and its queued timeout sent it again (``LOST_TASK_REQUEUE_SECONDS``,
    plus a loaded machine's delay).
    """
    no_progress_seconds = NO_PROGRESS_SECONDS
    if restart_dead:
        no_progress_seconds = max(NO_PROGRESS_SECONDS, LOST_TASK_REQUEUE_SECONDS + 120)
    last, seen = time.monotonic(), None
    while True:
        if restart_dead:
            stack.airflow.restart_dead()
        stack.check_alive()
        run = _get(session, f"{stack.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        tis = [(ti["task_id"], ti["map_index"], ti["state"], ti["try_number"])
               for ti in task_instances(stack, session, dag_id, run_id)]
        if run is not None and run["state"] in FINISHED:
            return run["state"]
        if (run and run["state"], tis) != seen:
            seen, last = (run and run["state"], tis), time.monotonic()
        assert time.monotonic() - last < no_progress_seconds, (
            f"{dag_id} {run_id}: nothing changed for {no_progress_seconds} s; task instances {tis}; "
            f"logs in {stack.home / 'logs'}"
        )
        time.sleep(1)


def clear_failed(stack, session, dag_id: str, run_id: str) -> None:
    """Clear the run's failed (and upstream-failed) task instances so that they run again."""
    for _ in range(30):
        try:
            response = session.post(f"{stack.url}/api/v2/dags/{dag_id}/clearTaskInstances", timeout=30,
                                    json={"dag_run_id": run_id, "dry_run": False, "only_failed": True})
        except requests.RequestException:
            response = None
        if response is not None and response.status_code == 200:
            break
        time.sleep(1)
    assert response is not None and response.status_code == 200, response and response.text
    deadline = time.monotonic() + 30
    while (_get(session, f"{stack.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}") or {}).get("state") in FINISHED:
        assert time.monotonic() < deadline, f"{run_id} stayed finished after its failed tasks were cleared"
        time.sleep(0.5)


def day_rows(bq_client, table: str) -> tuple[list[int], int]:
    """``(sorted row ids, distinct predicted_at)`` of the sharded day in ``table``."""
    rows = list(bq_client.query(
        f"SELECT row_id, predicted_at FROM `{table}` WHERE target_date = '{SHARDED_DAY.isoformat()}'").result())
    return sorted(r.row_id for r in rows), len({r.predicted_at for r in rows})


def source_ids(bq_client, features: str) -> list[int]:
    return sorted(r.row_id for r in bq_client.query(
        f"SELECT row_id FROM `{features}` WHERE load_date = '{SHARDED_DAY.isoformat()}'").result())
