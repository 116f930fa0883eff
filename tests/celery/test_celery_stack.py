"""The sharded day on a production-shaped Airflow: PostgreSQL metadata, Redis broker, two Celery workers.

One stack for the session (``conftest.celery_stack``); each test drives DAGs through the
REST API and checks the predictions in the warehouse: every day is exactly its source
rows, once, with one ``predicted_at`` (one commit), whatever happened to the workers, the
broker or the database meanwhile.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.celery.conftest import (
    FIRST_DAY_ALONE,
    SHARDED_DAY_ROWS,
    Dags,
    clear_failed,
    day_rows,
    shards,
    source_ids,
    task_instances,
    trigger,
    wait_run,
)
from tests.helpers import rows_per_day

pytestmark = pytest.mark.e2e
BACKFILL_FROM, BACKFILL_TO = "2026-11-15T00:00:00Z", "2026-11-21T00:00:00Z"  # target days 11-14 .. 11-20
BACKFILL_DAYS = [(dt.date(2026, 11, 14) + dt.timedelta(days=i)).isoformat() for i in range(7)]
DAILY_DAYS = sorted([*BACKFILL_DAYS, FIRST_DAY_ALONE])  # the fixture ran the daily DAG's first day alone


def test_a_generated_four_shard_dag_scores_the_day_with_shards_on_both_workers(celery_stack, celery_features, bq_client):
    stack, session, destinations = celery_stack
    # Celery hands a message to whichever free worker asks first: a worker that finishes its
    # first shards quickly may take them all. Each run must be exact; over at most three runs
    # of the day, both workers must have run shards.
    hosts: list[str] = []
    for attempt in range(3):
        run_id = trigger(stack, session, Dags.SHARDED, logical_date=f"2026-11-20T03:0{attempt}:00Z")
        assert wait_run(stack, session, Dags.SHARDED, run_id) == "success"
        scored = shards(stack, session, Dags.SHARDED, run_id)
        assert len(scored) == 4 and {ti["state"] for ti in scored} == {"success"}
        hosts += [ti["hostname"] for ti in scored]
        ids, commits = day_rows(bq_client, destinations[Dags.SHARDED])
        assert ids == source_ids(bq_client, celery_features) and len(ids) == SHARDED_DAY_ROWS  # 0 duplicates
        assert commits == 1
        if set(hosts) == {"worker-a", "worker-b"}:
            break
    assert set(hosts) == {"worker-a", "worker-b"}, hosts


def test_score_tasks_routed_to_a_queue_run_only_on_the_worker_consuming_it(celery_stack, celery_features, bq_client):
    stack, session, destinations = celery_stack
    run_id = trigger(stack, session, Dags.ROUTED)
    assert wait_run(stack, session, Dags.ROUTED, run_id) == "success"
    scored = shards(stack, session, Dags.ROUTED, run_id)
    assert len(scored) == 4 and {ti["queue"] for ti in scored} == {"worker-b"}
    assert {ti["hostname"] for ti in scored} == {"worker-b"}
    others = [ti for ti in task_instances(stack, session, Dags.ROUTED, run_id) if ti["task_id"] != "predict.score"]
    assert {ti["queue"] for ti in others} == {"default"}
    assert day_rows(bq_client, destinations[Dags.ROUTED]) == (source_ids(bq_client, celery_features), 1)


def test_a_seven_day_backfill_with_three_active_runs_writes_every_day_exactly(celery_stack, features_table, bq_client):
    stack, session, destinations = celery_stack
    before = session.get(f"{stack.url}/api/v2/dags/{Dags.DAILY}/dagRuns", timeout=30).json()["total_entries"]
    stack.backfill(session, Dags.DAILY, BACKFILL_FROM, BACKFILL_TO, max_active_runs=3)
    runs = stack.wait_runs(session, Dags.DAILY, before + 7, no_progress_seconds=240)
    backfilled = [r for r in runs if r["run_type"] == "backfill"]  # the fixture's runs are not
    assert sorted(r["state"] for r in backfilled) == ["success"] * 7
    source = {row.d: row.n for row in bq_client.query(
        f"SELECT CAST(load_date AS STRING) AS d, COUNT(DISTINCT row_id) AS n FROM `{features_table}` GROUP BY d").result()}
    assert rows_per_day(bq_client, destinations[Dags.DAILY]) == {day: source[day] for day in DAILY_DAYS}
    duplicates = next(iter(bq_client.query(
        f"SELECT COUNT(*) - COUNT(DISTINCT CONCAT(CAST(target_date AS STRING), '/', CAST(row_id AS STRING))) AS n "
        f"FROM `{destinations[Dags.DAILY]}`").result())).n
    assert duplicates == 0


def test_the_backfill_emits_one_asset_event_per_day_and_the_downstream_dag_runs(celery_stack):
    stack, session, _ = celery_stack
    events = session.get(f"{stack.url}/api/v2/assets/events", params={"source_dag_id": Dags.DAILY, "limit": 100},
                         timeout=30).json()["asset_events"]
    assert sorted(event["extra"]["target_date"] for event in events) == DAILY_DAYS
    # Airflow gives an asset-triggered run the events whose timestamps fall after the previous run's;
    # an event of a concurrent run committed just after a downstream run was created can miss it
    # (Airflow's own window, not ours): wait until every day arrived or no new run came for 10 s (five
    # scheduler heartbeats: the events were all there before this wait began).
    deadline, seen, settled_since = time.monotonic() + 180, [], None
    while True:
        runs = session.get(f"{stack.url}/api/v2/dags/{Dags.DOWNSTREAM}/dagRuns", timeout=30).json()["dag_runs"]
        finished = bool(runs) and all(run["state"] in ("success", "failed") for run in runs)
        if finished:
            seen = _days_reported(stack, session, runs)
            if settled_since is None or settled_since[0] != len(runs):
                settled_since = (len(runs), time.monotonic())
            if sorted(seen) == DAILY_DAYS or time.monotonic() - settled_since[1] > 10:
                break
        stack.check_alive()
        assert time.monotonic() < deadline, f"{Dags.DOWNSTREAM} did not run within 180 s of the events: {runs}"
        time.sleep(1)
    assert {run["state"] for run in runs} == {"success"} and {run["run_type"] for run in runs} == {"asset_triggered"}
    assert seen and len(seen) == len(set(seen)) and set(seen) <= set(DAILY_DAYS)  # no day reached it twice


def _days_reported(stack, session, runs) -> list[str]:
    seen = []
    for run in runs:
        seen += session.get(
            f"{stack.url}/api/v2/dags/{Dags.DOWNSTREAM}/dagRuns/{run['dag_run_id']}/taskInstances/report/xcomEntries/"
            "return_value", params={"deserialize": True}, timeout=30).json()["value"]
    return seen


def test_a_worker_killed_with_its_process_group_while_its_shard_runs_leaves_an_exact_day(
    celery_stack, celery_features, hang_model, bq_client
):
    stack, session, destinations = celery_stack
    _, armed = hang_model
    hanging = armed.with_name(armed.name + ".hanging")
    armed.touch()  # the next predict anywhere hangs: that shard's worker is killed under it
    run_id = trigger(stack, session, Dags.KILLED)
    deadline = time.monotonic() + 240
    while True:
        stack.check_alive()
        running = [ti for ti in shards(stack, session, Dags.KILLED, run_id) if ti["state"] == "running"]
        if hanging.exists() and len(running) == 1 and running[0]["hostname"] in stack.workers:
            break
        assert time.monotonic() < deadline, f"the hanging shard never ran alone: {running}"
        time.sleep(0.5)
    victim, index = running[0]["hostname"], running[0]["map_index"]
    killed = stack.kill_worker(victim)  # its process group and the task processes under it
    assert running[0]["pid"] in killed
    hanging.unlink()
    assert wait_run(stack, session, Dags.KILLED, run_id, restart_dead=True) == "success"
    retried = shards(stack, session, Dags.KILLED, run_id)[index]
    assert retried["try_number"] >= 2 and retried["state"] == "success"
    assert day_rows(bq_client, destinations[Dags.KILLED]) == (source_ids(bq_client, celery_features), 1)


@pytest.mark.parametrize("server", ["redis", "postgres"])
def test_the_broker_or_the_database_down_for_ten_seconds_mid_run_never_leaves_a_mixed_day(
    celery_stack, celery_features, bq_client, server
):
    stack, session, destinations = celery_stack
    dag_id = Dags.REDIS if server == "redis" else Dags.POSTGRES
    run_id = trigger(stack, session, dag_id)
    deadline = time.monotonic() + 240
    while not any(ti["state"] in ("queued", "running") for ti in shards(stack, session, dag_id, run_id)):
        stack.check_alive()
        assert time.monotonic() < deadline, "the shards never started"
        time.sleep(0.5)
    down = getattr(stack, server)
    down.stop()
    time.sleep(10)
    down.start()
    state = wait_run(stack, session, dag_id, run_id, restart_dead=True)
    if state == "failed":  # failed by name: clearing the failed tasks completes the day
        clear_failed(stack, session, dag_id, run_id)
        state = wait_run(stack, session, dag_id, run_id, restart_dead=True)
    assert state == "success"
    assert day_rows(bq_client, destinations[dag_id]) == (source_ids(bq_client, celery_features), 1)
