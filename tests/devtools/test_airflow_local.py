"""The moves that once crashed or stalled a local Airflow, driven many times on a real one.

A backfill right after runs finish, a backfill POST sent again, a component killed while
runs wait: the local Airflow that the demo and the end-to-end tests drive must come
through each, or fail within seconds by name. One real Airflow (LocalExecutor, SQLite)
runs a DAG of one ``EmptyOperator``, so each run costs the scheduler alone.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest

from airflow_provider_somlier.devtools.airflow_local import ComponentDiedError, running_airflow

pytestmark = pytest.mark.e2e
ROUNDS = 10
# One DAG per round (Airflow runs one backfill of a DAG at a time and marks it complete a
# while after its runs end), one for the repeated POST, one for the killed scheduler.
DAG_IDS = [f"somlier_local_moves_{i}" for i in range(ROUNDS)] + ["somlier_local_again", "somlier_local_kill"]
DAGS = """
import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for dag_id in {dag_ids!r}:
    with DAG(dag_id, schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False):
        EmptyOperator(task_id="noop")
"""


@pytest.fixture(scope="module")
def airflow(session_dir):
    dags = session_dir / "local-moves-dags"
    dags.mkdir()
    (dags / "somlier_local_moves.py").write_text(DAGS.format(dag_ids=DAG_IDS))
    with running_airflow(session_dir / "local-moves-airflow", dags) as running:
        session = running.session()
        deadline = time.monotonic() + 180
        for dag_id in DAG_IDS:
            while session.patch(f"{running.url}/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code != 200:
                assert time.monotonic() < deadline, f"{dag_id} was never parsed"
                time.sleep(1)
        running.test_session = session
        yield running


def _day(n: int) -> str:
    return (dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=n)).isoformat()


def test_backfills_sent_right_after_runs_finish_never_stop_the_scheduler(airflow):
    session = airflow.test_session
    for dag_id in DAG_IDS[:ROUNDS]:
        airflow.trigger(session, dag_id, _day(2))
        # 2: this run and the latest interval, run when the DAG was unpaused
        airflow.wait_runs(session, dag_id, 2, no_progress_seconds=120)
        # at once, the two days before the one just finished
        airflow.backfill(session, dag_id, _day(0), _day(1), max_active_runs=3)
        runs = airflow.wait_runs(session, dag_id, 4, no_progress_seconds=120)
        assert {r["state"] for r in runs} == {"success"}, runs
    airflow.check_alive()


def test_a_backfill_sent_again_gets_the_one_that_exists(airflow):
    session, dag_id = airflow.test_session, "somlier_local_again"
    first = airflow.backfill(session, dag_id, _day(100), _day(102))
    again = airflow.backfill(session, dag_id, _day(100), _day(102))

    assert again["id"] == first["id"]
    listed = session.get(f"{airflow.url}/api/v2/backfills", params={"dag_id": dag_id, "limit": 100}).json()["backfills"]
    assert [b["id"] for b in listed] == [first["id"]]
    runs = airflow.wait_runs(session, dag_id, 4, no_progress_seconds=120)
    assert {r["state"] for r in runs} == {"success"}, runs


def test_a_backfill_over_a_run_that_exists_is_refused_by_name(airflow):
    session, dag_id = airflow.test_session, DAG_IDS[0]  # has runs on days 0..2
    with pytest.raises(ValueError, match=r"would cover existing run\(s\) \['backfill__2026-03-02"):
        airflow.backfill(session, dag_id, _day(1), _day(5))


def test_a_component_killed_while_runs_wait_fails_the_wait_by_name_within_seconds(airflow):
    """Last in this module: it leaves this Airflow without a scheduler."""
    session, dag_id = airflow.test_session, "somlier_local_kill"
    scheduler = airflow.processes[1]
    os.killpg(scheduler.pid, signal.SIGKILL)
    session.post(f"{airflow.url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": _day(200)})

    started = time.monotonic()
    with pytest.raises(ComponentDiedError, match=r"Airflow scheduler \(pid \d+\) exited with code -9"):
        airflow.wait_runs(session, dag_id, 10_000, no_progress_seconds=600)
    assert time.monotonic() - started < 30
