"""The sharded group on a real Airflow 3 (scheduler, LocalExecutor, parallelism 4), in one sequence of runs.

One run scores the day in three concurrent shards; the whole run is cleared with one
shard made to fail, and the day keeps its old rows; clearing that shard and the commit
then gives the new day, exactly once.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from airflow_provider_somlier.devtools.airflow_local import running_airflow
from tests.helpers import rows_per_day
from tests.sharded.conftest import SHARDED_DAY_ROWS, sharded_dag_source

pytestmark = pytest.mark.e2e
DAG_ID = "somlier_sharded_e2e"


def _wait_run(session, url: str, run_id: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        run = session.get(f"{url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", timeout=10).json()
        if run["state"] in ("success", "failed"):
            return run["state"]
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {run['state']} after {timeout:.0f}s")
        time.sleep(2)


def _shards(session, url: str, run_id: str) -> list[dict]:
    response = session.get(
        f"{url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/predict.score/listMapped", timeout=10
    )
    return sorted(response.json()["task_instances"], key=lambda ti: ti["map_index"])


def _clear(session, url: str, body: dict) -> None:
    for _ in range(10):  # SQLite: the API answers 503 while the scheduler holds the lock
        response = session.post(f"{url}/api/v2/dags/{DAG_ID}/clearTaskInstances", json={"dry_run": False, **body}, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(1)
    assert response.status_code == 200, response.text
    time.sleep(3)  # let the run leave its finished state before it is polled


def _predicted_at(bq_client, destination: str) -> set:
    return {r.p for r in bq_client.query(f"SELECT DISTINCT predicted_at AS p FROM `{destination}`").result()}


def test_shards_run_concurrently_a_failed_shard_keeps_the_old_day_and_clearing_it_commits_the_new(
    session_dir, emulator, registry, fail_once, sharded_features, bq_client
):
    bq_client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    destination = f"{emulator.project}.predictions.sharded_e2e"
    model_ref, trigger = fail_once
    dags = session_dir / "sharded-e2e-dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(sharded_dag_source(DAG_ID, sharded_features, destination, model_ref=model_ref))
    source_ids = sorted(
        r.row_id for r in bq_client.query(f"SELECT row_id FROM `{sharded_features}` WHERE load_date = '2026-11-19'").result()
    )

    with running_airflow(session_dir / "sharded-e2e-airflow", dags) as airflow:
        session, url = airflow.session(), airflow.url
        deadline = time.monotonic() + 120
        while session.get(f"{url}/api/v2/dags/{DAG_ID}", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the DAG was not parsed within 120 s"
            time.sleep(2)
        assert session.patch(f"{url}/api/v2/dags/{DAG_ID}", json={"is_paused": False}, timeout=10).status_code == 200
        triggered = session.post(
            f"{url}/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": "2026-11-20T03:00:00Z"}, timeout=30
        )
        assert triggered.status_code == 200, triggered.text
        run_id = triggered.json()["dag_run_id"]

        # 1. three shards, side by side; the day is the source's, once
        assert _wait_run(session, url, run_id) == "success"
        shards = _shards(session, url, run_id)
        assert [ti["state"] for ti in shards] == ["success"] * 3
        spans = [(dt.datetime.fromisoformat(ti["start_date"]), dt.datetime.fromisoformat(ti["end_date"])) for ti in shards]
        assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:]), spans
        ids = sorted(r.row_id for r in bq_client.query(f"SELECT row_id FROM `{destination}`").result())
        assert ids == source_ids
        old = _predicted_at(bq_client, destination)
        assert len(old) == 1

        # 2. the whole run again, with one shard failing: the day keeps its old rows
        trigger.touch()
        _clear(session, url, {"dag_run_id": run_id, "only_failed": False})
        assert _wait_run(session, url, run_id) == "failed"
        states = [ti["state"] for ti in _shards(session, url, run_id)]
        assert sorted(states) == ["failed", "success", "success"], states
        assert not trigger.exists()
        assert _predicted_at(bq_client, destination) == old
        assert rows_per_day(bq_client, destination) == {"2026-11-19": SHARDED_DAY_ROWS}

        # 3. clearing the failed shard and the commit (downstream) gives the new day, once
        failed = states.index("failed")
        _clear(session, url, {"dag_run_id": run_id, "only_failed": False, "include_downstream": True,
                              "task_ids": [["predict.score", failed]]})
        assert _wait_run(session, url, run_id) == "success"
        new = _predicted_at(bq_client, destination)
        assert len(new) == 1 and new != old
        assert sorted(r.row_id for r in bq_client.query(f"SELECT row_id FROM `{destination}`").result()) == source_ids
