"""Sharded steps killed with SIGKILL: a shard mid-scoring, the commit just before and just after its transaction.

The day is always old or new, never partial, and running the killed step again gives the new day once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from airflow_provider_somlier.operators.sharded import (
    MLOpsShardCommitOperator,
    MLOpsShardPlanOperator,
    MLOpsShardScoreOperator,
)
from tests.helpers import rows_per_day
from tests.sharded.conftest import step_context as _context
from tests.sharded.conftest import step_kwargs as _kwargs

SHARD_PROCESS = """
import json, sys
from airflow_provider_somlier.operators.sharded import MLOpsShardScoreOperator
from tests.sharded.conftest import step_context as _context
spec = json.loads(sys.argv[1])
MLOpsShardScoreOperator(task_id="score", plan=spec["plan"], shard=spec["shard"], **spec["kwargs"]).execute(_context({}))
"""


def _predicted_at(bq_client, destination: str) -> set:
    """The runs (by their predicted_at) whose rows the day holds; its profile must name the same run."""
    day = {r.p for r in bq_client.query(f"SELECT DISTINCT predicted_at AS p FROM `{destination}`").result()}
    profiled = {r.p for r in bq_client.query(f"SELECT DISTINCT predicted_at AS p FROM `{destination}__profile`").result()}
    assert profiled == day, f"the day's profile ({profiled}) disagrees with its predictions ({day})"
    return day


def test_a_shard_killed_mid_scoring_leaves_the_old_day_and_its_rerun_commits_the_new(
    registry, hang_once, sharded_features, destination, bq_client
):
    model_ref, trigger = hang_once
    kwargs = _kwargs(sharded_features, destination) | {"model_ref": model_ref}
    # the day as an earlier run left it
    pushed: dict = {}
    shards = MLOpsShardPlanOperator(task_id="plan", shards=3, **kwargs).execute(_context(pushed))
    results = [
        MLOpsShardScoreOperator(task_id="score", plan=pushed["plan"], shard=s, **kwargs).execute(_context({}))
        for s in shards
    ]
    MLOpsShardCommitOperator(task_id="commit", plan=pushed["plan"], shard_results=results, **kwargs).execute(_context({}))
    old = _predicted_at(bq_client, destination)

    # a new run: one shard hangs in predict and is killed with SIGKILL
    pushed = {}
    shards = MLOpsShardPlanOperator(task_id="plan", shards=3, **kwargs).execute(_context(pushed))
    trigger.touch()
    spec = json.dumps({"plan": pushed["plan"], "shard": shards[1], "kwargs": kwargs})
    process = subprocess.Popen([sys.executable, "-c", SHARD_PROCESS, spec], env=os.environ.copy(), start_new_session=True)
    hanging = trigger.with_name(trigger.name + ".hanging")
    deadline = time.monotonic() + 120
    while not hanging.exists():
        assert process.poll() is None, "the shard process ended before it hung"
        assert time.monotonic() < deadline, "the shard did not reach predict within 120 s"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert _predicted_at(bq_client, destination) == old
    assert rows_per_day(bq_client, destination) == {"2026-11-19": pushed["plan"]["source_rows"]}

    # the killed shard again (as Airflow's retry would), the others, and the commit
    results = [
        MLOpsShardScoreOperator(task_id="score", plan=pushed["plan"], shard=s, **kwargs).execute(_context({}))
        for s in shards
    ]
    MLOpsShardCommitOperator(task_id="commit", plan=pushed["plan"], shard_results=results, **kwargs).execute(_context({}))
    new = _predicted_at(bq_client, destination)
    assert len(new) == 1 and new != old
    assert rows_per_day(bq_client, destination) == {"2026-11-19": pushed["plan"]["source_rows"]}


COMMIT_PROCESS = """
import json, os, signal, sys
from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
from airflow_provider_somlier.operators.sharded import MLOpsShardCommitOperator
from tests.sharded.conftest import step_context as _context
spec = json.loads(sys.argv[1])
commit = SomlierBigQueryHook.commit_staged
def killed_around_the_transaction(self, *args, **kwargs):
    if spec["when"] == "after":
        commit(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
SomlierBigQueryHook.commit_staged = killed_around_the_transaction
MLOpsShardCommitOperator(task_id="commit", plan=spec["plan"], shard_results=spec["results"], **spec["kwargs"]).execute(_context({}))
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_commit_killed_around_its_transaction_leaves_a_whole_day_and_its_rerun_gives_the_new_one_once(
    when, registry, sharded_features, destination, bq_client
):
    kwargs = _kwargs(sharded_features, destination)
    runs = []
    for _ in range(2):  # the day as an earlier run left it, then a new run's shards
        pushed: dict = {}
        shards = MLOpsShardPlanOperator(task_id="plan", shards=3, **kwargs).execute(_context(pushed))
        results = [
            MLOpsShardScoreOperator(task_id="score", plan=pushed["plan"], shard=s, **kwargs).execute(_context({}))
            for s in shards
        ]
        runs.append((pushed["plan"], results))
    (old_plan, old_results), (plan, results) = runs
    MLOpsShardCommitOperator(task_id="commit", plan=old_plan, shard_results=old_results, **kwargs).execute(_context({}))
    old = _predicted_at(bq_client, destination)

    spec = json.dumps({"plan": plan, "results": results, "kwargs": kwargs, "when": when})
    process = subprocess.run([sys.executable, "-c", COMMIT_PROCESS, spec], env=os.environ.copy(), timeout=300)
    assert process.returncode == -signal.SIGKILL
    day = _predicted_at(bq_client, destination)
    assert day == old if when == "before" else (len(day) == 1 and day != old)
    assert rows_per_day(bq_client, destination) == {"2026-11-19": plan["source_rows"]}

    # Airflow's retry of the commit
    MLOpsShardCommitOperator(task_id="commit", plan=plan, shard_results=results, **kwargs).execute(_context({}))
    new = _predicted_at(bq_client, destination)
    assert len(new) == 1 and new != old
    assert rows_per_day(bq_client, destination) == {"2026-11-19": plan["source_rows"]}
