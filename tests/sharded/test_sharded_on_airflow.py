"""The sharded group on a real Airflow 3 (scheduler, LocalExecutor, parallelism 4): three DAGs on the session's.

- One run scores the day in three concurrent shards; the whole run is cleared with one
  shard made to fail, and the day keeps its old rows; clearing that shard and the
  commit then gives the new day, exactly once.
- A shard, then the commit, is killed with SIGKILL while the scheduler runs them (the
  task process, by the pid Airflow records): each time the run fails, the day keeps its
  old rows, and clearing the killed task gives the new day, once.
- A DAG made by ``somlier offline create_v2 … --shards 3`` is parsed by the DAG processor
  and scores the day on the scheduler.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time

import pytest
from click.testing import CliRunner

from airflow_provider_somlier.cli import main
from tests.faultproxy import FaultProxy
from tests.helpers import rows_per_day
from tests.sharded.conftest import SHARDED_DAY_ROWS, sharded_dag_source

pytestmark = pytest.mark.e2e
FAIL_DAG = "somlier_sharded_e2e"
KILL_DAG = "somlier_sharded_kill_e2e"
GENERATED_DAG = "somlier_sharded_generated_e2e"
LOGICAL_DATE = "2026-11-20T03:00:00Z"  # 12:00 KST: the target day is 2026-11-19
KILL_CONN = "bq_through_proxy"


@pytest.fixture(scope="module")
def rest_proxy(emulator):
    """A fault proxy in front of the emulator's REST port, for the DAG whose commit is killed mid-transaction."""
    with FaultProxy(emulator.rest_port) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def scheduler(shared_airflow, emulator, registry, fail_once, hang_once, sharded_features, bq_client, rest_proxy):
    """The session's Airflow with the three DAGs parsed and unpaused: ``(session, url, destinations, airflow)``."""
    bq_client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    destinations = {dag: f"{emulator.project}.predictions.{dag}" for dag in (FAIL_DAG, KILL_DAG, GENERATED_DAG)}
    dags = shared_airflow.repo / "dags"
    (dags / f"{FAIL_DAG}.py").write_text(
        sharded_dag_source(FAIL_DAG, sharded_features, destinations[FAIL_DAG], model_ref=fail_once[0])
    )
    (dags / f"{KILL_DAG}.py").write_text(
        sharded_dag_source(KILL_DAG, sharded_features, destinations[KILL_DAG], model_ref=hang_once[0],
                           gcp_conn_id=KILL_CONN)
    )
    generated = CliRunner().invoke(main, [
        "offline", "create_v2", "diabetes-ridge@champion", GENERATED_DAG, "0 9 * * *",
        sharded_features.split(".", 1)[1], "load_date", destinations[GENERATED_DAG].split(".", 1)[1],
        "--start_date", "2026-11-01", "--shards", "3", "--passthrough_columns", "row_id", "--dry_run",
    ], env={"SOMLIER_CONFIG": "/nonexistent"})
    assert generated.exit_code == 0, generated.stderr
    (dags / f"{GENERATED_DAG}.py").write_text(generated.stdout)

    airflow = shared_airflow
    session, url = airflow.session(), airflow.url
    # The killed DAG's REST calls go through the proxy; Storage Read goes to the emulator directly.
    extras = emulator.connection_extras() | {"api_endpoint": rest_proxy.url, "retry_deadline_seconds": 120}
    created = session.post(f"{url}/api/v2/connections", timeout=30, json={
        "connection_id": KILL_CONN, "conn_type": "google_cloud_platform", "extra": json.dumps(extras)})
    assert created.status_code == 201, created.text
    for dag_id in destinations:
        deadline = time.monotonic() + 120
        while session.get(f"{url}/api/v2/dags/{dag_id}", timeout=10).status_code != 200:
            airflow.check_alive()
            assert time.monotonic() < deadline, f"{dag_id} was not parsed within 120 s"
            time.sleep(2)
        assert session.patch(f"{url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=10).status_code == 200
    yield session, url, destinations, airflow


def _trigger(airflow, session, dag_id: str) -> str:
    return airflow.trigger(session, dag_id, LOGICAL_DATE)


def _wait_run(session, url: str, dag_id: str, run_id: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        run = session.get(f"{url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", timeout=10).json()
        if run["state"] in ("success", "failed"):
            return run["state"]
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} of {dag_id} still {run['state']} after {timeout:.0f}s")
        time.sleep(2)


def _shards(session, url: str, dag_id: str, run_id: str) -> list[dict]:
    response = session.get(
        f"{url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/predict.score/listMapped", timeout=10
    )
    return sorted(response.json()["task_instances"], key=lambda ti: ti["map_index"])


def _task(session, url: str, dag_id: str, run_id: str, task_id: str) -> dict:
    return session.get(f"{url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", timeout=10).json()


def _clear(session, url: str, dag_id: str, body: dict) -> None:
    for _ in range(10):  # SQLite: the API answers 503 while the scheduler holds the lock
        response = session.post(f"{url}/api/v2/dags/{dag_id}/clearTaskInstances", json={"dry_run": False, **body},
                                timeout=30)
        if response.status_code != 503:
            break
        time.sleep(1)
    assert response.status_code == 200, response.text
    time.sleep(3)  # let the run leave its finished state before it is polled


def _predicted_at(bq_client, destination: str) -> set:
    return {r.p for r in bq_client.query(f"SELECT DISTINCT predicted_at AS p FROM `{destination}`").result()}


def _row_ids(bq_client, table: str, where: str = "TRUE") -> list[int]:
    return sorted(r.row_id for r in bq_client.query(f"SELECT row_id FROM `{table}` WHERE {where}").result())


def _sigkill_when(predicate, what: str, timeout: float = 120) -> int:
    """SIGKILL the task process ``predicate()`` returns the pid of, once it does; returns that pid."""
    deadline = time.monotonic() + timeout
    while (pid := predicate()) is None:
        assert time.monotonic() < deadline, f"{what} never ran"
        time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    return pid


def test_shards_run_concurrently_a_failed_shard_keeps_the_old_day_and_clearing_it_commits_the_new(
    scheduler, fail_once, sharded_features, bq_client
):
    session, url, destinations, airflow = scheduler
    destination, (_, trigger) = destinations[FAIL_DAG], fail_once
    source_ids = _row_ids(bq_client, sharded_features, "load_date = '2026-11-19'")
    run_id = _trigger(airflow, session, FAIL_DAG)

    # 1. three shards, side by side; the day is the source's, once
    assert _wait_run(session, url, FAIL_DAG, run_id) == "success"
    shards = _shards(session, url, FAIL_DAG, run_id)
    assert [ti["state"] for ti in shards] == ["success"] * 3
    # Side by side: every shard was handed to the executor before any shard ended. (Whether their
    # running times also overlap is the machine's timing: a shard of a preloaded worker takes well
    # under a second, and on a busy machine the executor's processes may start one after another.)
    queued = [dt.datetime.fromisoformat(ti["queued_when"]) for ti in shards]
    ended = [dt.datetime.fromisoformat(ti["end_date"]) for ti in shards]
    assert max(queued) < min(ended), list(zip(queued, ended))
    assert _row_ids(bq_client, destination) == source_ids
    old = _predicted_at(bq_client, destination)
    assert len(old) == 1

    # 2. the whole run again, with one shard failing: the day keeps its old rows
    trigger.touch()
    _clear(session, url, FAIL_DAG, {"dag_run_id": run_id, "only_failed": False})
    assert _wait_run(session, url, FAIL_DAG, run_id) == "failed"
    states = [ti["state"] for ti in _shards(session, url, FAIL_DAG, run_id)]
    assert sorted(states) == ["failed", "success", "success"], states
    assert not trigger.exists()
    assert _predicted_at(bq_client, destination) == old
    assert rows_per_day(bq_client, destination) == {"2026-11-19": SHARDED_DAY_ROWS}

    # 3. clearing the failed shard and the commit (downstream) gives the new day, once
    failed = states.index("failed")
    _clear(session, url, FAIL_DAG, {"dag_run_id": run_id, "only_failed": False, "include_downstream": True,
                                    "task_ids": [["predict.score", failed]]})
    assert _wait_run(session, url, FAIL_DAG, run_id) == "success"
    new = _predicted_at(bq_client, destination)
    assert len(new) == 1 and new != old
    assert _row_ids(bq_client, destination) == source_ids


def test_a_shard_and_the_commit_killed_with_sigkill_on_the_scheduler_leave_the_old_day(
    scheduler, hang_once, rest_proxy, sharded_features, bq_client
):
    session, url, destinations, airflow = scheduler
    destination, (_, trigger) = destinations[KILL_DAG], hang_once
    source_ids = _row_ids(bq_client, sharded_features, "load_date = '2026-11-19'")
    run_id = _trigger(airflow, session, KILL_DAG)
    assert _wait_run(session, url, KILL_DAG, run_id) == "success"
    first = _predicted_at(bq_client, destination)

    # 1. the whole run again; one shard hangs in predict and its task process is killed
    hanging = trigger.with_name(trigger.name + ".hanging")
    hanging.unlink(missing_ok=True)  # an earlier test's hang
    trigger.touch()
    _clear(session, url, KILL_DAG, {"dag_run_id": run_id, "only_failed": False})

    def hanging_shard() -> int | None:
        if not hanging.exists():
            return None
        running = [ti for ti in _shards(session, url, KILL_DAG, run_id) if ti["state"] == "running"]
        return running[0]["pid"] if len(running) == 1 and running[0]["pid"] else None

    _sigkill_when(hanging_shard, "the hanging shard")
    hanging.unlink()
    assert _wait_run(session, url, KILL_DAG, run_id) == "failed"
    states = [ti["state"] for ti in _shards(session, url, KILL_DAG, run_id)]
    assert sorted(states) == ["failed", "success", "success"], states
    assert _task(session, url, KILL_DAG, run_id, "predict.commit")["state"] == "upstream_failed"
    assert _predicted_at(bq_client, destination) == first
    assert rows_per_day(bq_client, destination) == {"2026-11-19": SHARDED_DAY_ROWS}

    _clear(session, url, KILL_DAG, {"dag_run_id": run_id, "only_failed": False, "include_downstream": True,
                                    "task_ids": [["predict.score", states.index("failed")]]})
    assert _wait_run(session, url, KILL_DAG, run_id) == "success"
    second = _predicted_at(bq_client, destination)
    assert len(second) == 1 and second != first
    assert _row_ids(bq_client, destination) == source_ids

    # 2. the whole run again; the commit's transaction never reaches the warehouse, and the
    #    commit's task process is killed while it waits
    rest_proxy.fault_on_request(b"BEGIN TRANSACTION", "blackhole")
    _clear(session, url, KILL_DAG, {"dag_run_id": run_id, "only_failed": False})

    def waiting_commit() -> int | None:
        if not rest_proxy.triggered.is_set():
            return None
        return _task(session, url, KILL_DAG, run_id, "predict.commit").get("pid")

    _sigkill_when(waiting_commit, "the commit's transaction")
    rest_proxy.fault("pass")
    assert _wait_run(session, url, KILL_DAG, run_id) == "failed"
    assert _task(session, url, KILL_DAG, run_id, "predict.commit")["state"] == "failed"
    assert _predicted_at(bq_client, destination) == second
    assert rows_per_day(bq_client, destination) == {"2026-11-19": SHARDED_DAY_ROWS}

    # clearing the commit alone commits what the shards staged: the new day, once
    _clear(session, url, KILL_DAG, {"dag_run_id": run_id, "only_failed": False,
                                    "task_ids": ["predict.commit"]})
    assert _wait_run(session, url, KILL_DAG, run_id) == "success"
    third = _predicted_at(bq_client, destination)
    assert len(third) == 1 and third != second
    assert _row_ids(bq_client, destination) == source_ids


def test_a_generated_sharded_dag_is_parsed_and_scores_the_day_on_the_scheduler(scheduler, sharded_features, bq_client):
    session, url, destinations, airflow = scheduler
    run_id = _trigger(airflow, session, GENERATED_DAG)
    assert _wait_run(session, url, GENERATED_DAG, run_id) == "success"
    assert [ti["state"] for ti in _shards(session, url, GENERATED_DAG, run_id)] == ["success"] * 3
    assert _row_ids(bq_client, destinations[GENERATED_DAG]) == _row_ids(
        bq_client, sharded_features, "load_date = '2026-11-19'"
    )
