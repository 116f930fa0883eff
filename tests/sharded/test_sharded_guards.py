"""What the sharded steps refuse: a lost read session, counts that do not add up. The day stays as it was."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from airflow_provider_somlier.errors import ReadSessionExpiredError, ShardCountMismatchError, ShardedRunError
from airflow_provider_somlier.operators.sharded import (
    MLOpsShardCommitOperator,
    MLOpsShardPlanOperator,
    MLOpsShardScoreOperator,
)
from tests.helpers import rows_per_day
from tests.sharded.conftest import step_context as _context
from tests.sharded.conftest import step_kwargs as _kwargs


@pytest.fixture
def planned(registry, sharded_features, destination):
    """A plan of three shards and the shards it mapped, made in-process."""
    pushed: dict = {}
    kwargs = _kwargs(sharded_features, destination)
    shards = MLOpsShardPlanOperator(task_id="plan", shards=3, **kwargs).execute(_context(pushed))
    assert len(shards) == 3
    return SimpleNamespace(plan=pushed["plan"], shards=shards, kwargs=kwargs, context=_context({}))


def _score(planned, shard: dict, plan: dict | None = None) -> dict:
    op = MLOpsShardScoreOperator(task_id="score", plan=plan or planned.plan, shard=shard, **planned.kwargs)
    return op.execute(planned.context)


def test_a_shard_whose_read_session_is_gone_fails_by_name(planned):
    session = planned.plan["session"].rsplit("/", 1)[0] + "/0123456789abcdef"
    lost = {"index": 1, "stream": f"{session}/streams/1"}
    with pytest.raises(ReadSessionExpiredError, match="clear the whole task group"):
        _score(planned, lost)


def test_a_shard_retried_after_its_session_expired_fails_before_reading(planned):
    expired = planned.plan | {"expires_at": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).isoformat()}
    with pytest.raises(ReadSessionExpiredError, match=r"expired at .*clear the whole task group"):
        _score(planned, planned.shards[0], expired)


def test_a_retried_shard_replaces_its_staging_rows_instead_of_adding_to_them(planned, bq_client):
    first = _score(planned, planned.shards[2])
    again = _score(planned, planned.shards[2])
    assert again["staging"] == first["staging"]
    held = next(iter(bq_client.query(f"SELECT COUNT(*) AS n FROM `{again['staging']}`").result())).n
    assert held == first["rows"] == again["rows"]


def test_a_commit_whose_shards_do_not_add_up_to_the_source_count_leaves_the_day_untouched(
    planned, destination, bq_client
):
    results = [_score(planned, shard) for shard in planned.shards]
    short = planned.plan | {"source_rows": planned.plan["source_rows"] + 1}
    with pytest.raises(ShardCountMismatchError, match=f"counted {short['source_rows']}"):
        MLOpsShardCommitOperator(task_id="commit", plan=short, shard_results=results, **planned.kwargs).execute(
            planned.context
        )
    assert rows_per_day_or_none(bq_client, destination) is None


def test_a_commit_whose_staging_table_holds_other_rows_than_its_shard_staged_refuses(planned, destination, bq_client):
    results = [_score(planned, shard) for shard in planned.shards]
    bq_client.query(f"DELETE FROM `{results[1]['staging']}` WHERE TRUE").result()
    with pytest.raises(ShardCountMismatchError, match=f"shard 1 staged {results[1]['rows']}, holds 0"):
        MLOpsShardCommitOperator(task_id="commit", plan=planned.plan, shard_results=results, **planned.kwargs).execute(
            planned.context
        )
    assert rows_per_day_or_none(bq_client, destination) is None


def test_the_commit_writes_every_shard_once_and_drops_their_staging(planned, destination, bq_client):
    results = [_score(planned, shard) for shard in planned.shards]
    summary = MLOpsShardCommitOperator(
        task_id="commit", plan=planned.plan, shard_results=list(reversed(results)), **planned.kwargs
    ).execute(planned.context)
    assert summary["rows_written"] == planned.plan["source_rows"] == sum(r["rows"] for r in results)
    assert rows_per_day(bq_client, destination) == {"2026-11-19": planned.plan["source_rows"]}
    assert not any(_exists(bq_client, result["staging"]) for result in results)


def test_a_commit_run_again_after_it_committed_finds_its_day_and_writes_nothing(planned, destination, bq_client):
    """What a commit killed after it committed, or cleared alone, meets: its staging is gone, its day is in."""
    results = [_score(planned, shard) for shard in planned.shards]
    commit = MLOpsShardCommitOperator(task_id="commit", plan=planned.plan, shard_results=results, **planned.kwargs)
    first = commit.execute(planned.context)
    predicted_at = {r.p for r in bq_client.query(f"SELECT DISTINCT predicted_at AS p FROM `{destination}`").result()}
    again = commit.execute(planned.context)
    assert again["rows_written"] == first["rows_written"] and again["job_id"] is None
    assert rows_per_day(bq_client, destination) == {"2026-11-19": planned.plan["source_rows"]}
    assert {r.p for r in bq_client.query(f"SELECT DISTINCT predicted_at AS p FROM `{destination}`").result()} == predicted_at


def test_a_commit_whose_staging_is_gone_and_whose_day_is_not_in_fails_by_name(planned, destination, bq_client):
    results = [_score(planned, shard) for shard in planned.shards]
    bq_client.delete_table(results[2]["staging"])
    with pytest.raises(ShardedRunError, match="staging tables of this plan are gone .*clear the whole task group"):
        MLOpsShardCommitOperator(task_id="commit", plan=planned.plan, shard_results=results, **planned.kwargs).execute(
            planned.context
        )
    assert rows_per_day_or_none(bq_client, destination) is None


def _exists(client, table_id: str) -> bool:
    from google.api_core.exceptions import NotFound

    try:
        client.get_table(table_id)
    except NotFound:
        return False
    return True


def rows_per_day_or_none(client, table_id: str) -> dict | None:
    return rows_per_day(client, table_id) if _exists(client, table_id) else None


def test_a_shard_scored_again_after_the_commit_leaves_no_staging_behind(planned, destination, bq_client):
    """Plan, score all, commit; one shard cleared and run again stages anew; the commit run again drops it."""
    results = [_score(planned, shard) for shard in planned.shards]
    commit = MLOpsShardCommitOperator(task_id="commit", plan=planned.plan, shard_results=results, **planned.kwargs)
    commit.execute(planned.context)
    again = _score(planned, planned.shards[1])
    assert _exists(bq_client, again["staging"])

    summary = commit.execute(planned.context)

    assert summary["job_id"] is None  # the day was already in: nothing written
    assert not any(_exists(bq_client, result["staging"]) for result in results)
    assert rows_per_day(bq_client, destination) == {"2026-11-19": planned.plan["source_rows"]}


def _comparable(lineage, destination: str) -> dict:
    """An OperatorLineage as plain data, the destination's name replaced so two runs compare."""
    from openlineage.client.serde import Serde

    def plain(datasets):
        return [json.loads(Serde.to_json(d).replace(destination, "DESTINATION")) for d in datasets]

    return {
        "inputs": plain(lineage.inputs),
        "outputs": plain(lineage.outputs),
        "run_facets": {k: json.loads(Serde.to_json(v)) for k, v in lineage.run_facets.items()},
    }


def test_the_commit_reports_the_same_summary_asset_extra_and_lineage_as_the_single_task(
    planned, destination, bq_client, emulator
):
    from airflow_provider_somlier.operators import MLOpsOfflineOperator

    results = [_score(planned, shard) for shard in planned.shards]
    commit = MLOpsShardCommitOperator(task_id="commit", plan=planned.plan, shard_results=results, **planned.kwargs)
    sharded = commit.execute(planned.context)
    single_destination = f"{destination}_single"
    single = MLOpsOfflineOperator(task_id="predict", **(planned.kwargs | {"destination_table_ref": single_destination}))
    try:
        alone = single.execute(planned.context)
        assert isinstance(sharded["model_version"], str)
        shared = set(alone) & set(sharded) - {"destination", "job_id", "seconds", "phases"}
        assert {k: sharded[k] for k in shared} == {k: alone[k] for k in shared}
        assert _comparable(commit.get_openlineage_facets_on_complete(None), destination) == _comparable(
            single.get_openlineage_facets_on_complete(None), single_destination
        )
    finally:
        bq_client.delete_table(single_destination, not_found_ok=True)


def test_plan_and_score_report_the_feature_table_they_read_and_the_model(planned, sharded_features):
    plan_op = MLOpsShardPlanOperator(task_id="plan", shards=3, **planned.kwargs)
    plan_op.execute(_context({}))
    score_op = MLOpsShardScoreOperator(task_id="score", plan=planned.plan, shard=planned.shards[0], **planned.kwargs)
    score_op.execute(planned.context)

    for op in (plan_op, score_op):
        lineage = op.get_openlineage_facets_on_complete(None)
        assert [(d.namespace, d.name) for d in lineage.inputs] == [("bigquery", sharded_features)]
        assert "schema" in lineage.inputs[0].facets
        assert lineage.outputs == []
        assert lineage.run_facets["somlier_model"].version == planned.plan["model_version"]


def test_a_failed_shard_reports_its_lineage_without_calling_the_warehouse(planned, sharded_features, monkeypatch):
    """A shard that failed (its warehouse gone, say) still names what it read, at no network cost."""
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

    score_op = MLOpsShardScoreOperator(task_id="score", plan=planned.plan, shard=planned.shards[0], **planned.kwargs)
    score_op.execute(planned.context)

    def no_calls(*args, **kwargs):
        raise AssertionError("a failed task's lineage called the warehouse")

    monkeypatch.setattr(SomlierBigQueryHook, "get_table_or_none", no_calls)
    lineage = score_op.get_openlineage_facets_on_failure(None)
    assert [(d.name, d.facets) for d in lineage.inputs] == [(sharded_features, {})]
    assert lineage.run_facets["somlier_model"].version == planned.plan["model_version"]
