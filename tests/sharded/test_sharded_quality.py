"""The sharded group profiles each shard and its commit merges and judges them, as the single task does."""

from __future__ import annotations

import json

import pytest

from airflow_provider_somlier.errors import QualityCheckError
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from airflow_provider_somlier.operators.sharded import (
    MLOpsShardCommitOperator,
    MLOpsShardPlanOperator,
    MLOpsShardScoreOperator,
)
from tests.helpers import run_context, staging_tables
from tests.sharded.conftest import RUN_DATE
from tests.sharded.conftest import step_context as _context
from tests.sharded.conftest import step_kwargs as _kwargs

EXACT = ("role", "kind", "day_rows", "nulls", "nans", "value_count", "min", "max", "histogram")


def _sharded(features: str, destination: str, **overrides) -> tuple[list[dict], dict, dict]:
    pushed: dict = {}
    kwargs = {**_kwargs(features, destination), **overrides}
    shards = MLOpsShardPlanOperator(task_id="plan", shards=3, **kwargs).execute(_context(pushed))
    assert len(shards) == 3
    results = [
        MLOpsShardScoreOperator(task_id="score", plan=pushed["plan"], shard=shard, **kwargs).execute(_context({}))
        for shard in shards
    ]
    return results, pushed["plan"], kwargs


def _profile(bq_client, destination: str) -> dict[str, dict]:
    rows = bq_client.query(f"SELECT * FROM `{destination}__profile`").result()
    return {row["column_name"]: dict(row.items()) for row in rows}


def test_the_merged_shard_profiles_equal_the_single_task_profile_of_the_day(
    registry, sharded_features, destination, bq_client
):
    results, plan, kwargs = _sharded(sharded_features, destination)
    assert all(r["profile"]["rows"] == r["rows"] > 0 for r in results)
    summary = MLOpsShardCommitOperator(task_id="commit", plan=plan, shard_results=results, **kwargs).execute(
        _context({})
    )
    assert summary["quality"]["rows"] == plan["source_rows"]
    single = f"{destination}_single"
    alone = MLOpsOfflineOperator(task_id="predict", **{**kwargs, "destination_table_ref": single}).execute(
        run_context(RUN_DATE)
    )
    assert alone["quality"]["nulls"] == summary["quality"]["nulls"]
    merged, whole = _profile(bq_client, destination), _profile(bq_client, single)
    assert set(merged) == set(whole) and len(whole) == 11
    for name, column in whole.items():
        assert {k: merged[name][k] for k in EXACT} == {k: column[k] for k in EXACT}, name
        assert merged[name]["mean"] == pytest.approx(column["mean"], rel=1e-9)
        assert merged[name]["std"] == pytest.approx(column["std"], rel=1e-9)
        assert json.loads(column["histogram"])["bins"]


def test_a_sharded_day_refused_by_the_gate_keeps_the_old_day_and_drops_the_shards_staging(
    registry, sharded_features, destination, bq_client
):
    results, plan, kwargs = _sharded(sharded_features, destination, quality_checks={"prediction_range": [0, 1]})
    assert len(staging_tables(bq_client, destination)) == 3
    with pytest.raises(QualityCheckError, match=r"prediction_range on 'prediction': \[.*\] outside \[0.0, 1.0\]"):
        MLOpsShardCommitOperator(task_id="commit", plan=plan, shard_results=results, **kwargs).execute(_context({}))
    assert staging_tables(bq_client, destination) == []
    from google.api_core.exceptions import NotFound

    with pytest.raises(NotFound):
        bq_client.get_table(destination)
