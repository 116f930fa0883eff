"""The sharded task group inside real DAG runs (``dag.test()``): plan → 3 mapped shards → one commit."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.helpers import asset_events, load_dag_file, rows_per_day
from tests.sharded.conftest import RUN_DATE, SHARDED_DAY_ROWS, sharded_dag_source

UTC = dt.timezone.utc


def _staging_tables(bq_client, destination: str) -> list[str]:
    project, dataset, table = destination.split(".")
    return [t.table_id for t in bq_client.list_tables(f"{project}.{dataset}") if t.table_id.startswith("_somlier_staging_" + table)]


def _mapped_scores(run) -> dict[int, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id="predict.score")
        return {ti.map_index: ti.state for ti in tis}


def _day(bq_client, destination: str) -> list[tuple]:
    return sorted(
        tuple(r.values())
        for r in bq_client.query(
            f"SELECT row_id, prediction, model_version, airflow_run_id FROM `{destination}` "
            "WHERE target_date = '2026-11-19'"
        ).result()
    )


def test_three_shards_write_the_day_exactly_as_the_source_holds_it(
    airflow_db, registry, sharded_features, destination, bq_client
):
    features_table = sharded_features
    dag = load_dag_file(sharded_dag_source("somlier_sharded", features_table, destination), "somlier_sharded")
    run = dag.test(logical_date=RUN_DATE)
    assert run.state == "success"
    assert _mapped_scores(run) == {0: "success", 1: "success", 2: "success"}
    source_ids = sorted(
        r.row_id for r in bq_client.query(f"SELECT row_id FROM `{features_table}` WHERE load_date = '2026-11-19'").result()
    )
    assert [row[0] for row in _day(bq_client, destination)] == source_ids
    lineage = list(bq_client.query(
        f"SELECT DISTINCT model_name, model_version, model_run_id, airflow_dag_id, airflow_run_id, predicted_at "
        f"FROM `{destination}`"
    ).result())
    assert len(lineage) == 1
    assert tuple(lineage[0].values())[:5] == ("diabetes-ridge", 1, registry["v1"].run_id, "somlier_sharded", run.run_id)
    assert _staging_tables(bq_client, destination) == []
    # Only the commit says "the day is written", once, with the whole day's count.
    events = asset_events("bigquery://" + destination.replace(".", "/"), run.run_id)
    assert [(e["target_date"], e["rows_written"]) for e in events] == [("2026-11-19", SHARDED_DAY_ROWS)]


def test_a_rerun_of_the_whole_run_leaves_one_copy_of_the_day(
    airflow_db, registry, sharded_features, destination, bq_client
):
    dag = load_dag_file(sharded_dag_source("somlier_sharded_rerun", sharded_features, destination), "somlier_sharded_rerun")
    for _ in range(2):
        assert dag.test(logical_date=RUN_DATE).state == "success"
    assert rows_per_day(bq_client, destination) == {"2026-11-19": SHARDED_DAY_ROWS}


def test_a_day_too_small_to_split_is_scored_as_one_shard(airflow_db, registry, features_table, destination, bq_client):
    dag = load_dag_file(sharded_dag_source("somlier_sharded_small", features_table, destination), "somlier_sharded_small")
    run = dag.test(logical_date=RUN_DATE)
    assert run.state == "success"
    assert _mapped_scores(run) == {0: "success"}
    assert rows_per_day(bq_client, destination) == {"2026-11-19": 50}


def test_a_failed_shard_leaves_the_day_as_it_was(
    airflow_db, registry, fail_once, sharded_features, destination, bq_client
):
    features_table = sharded_features
    good = load_dag_file(sharded_dag_source("somlier_sharded_good", features_table, destination), "somlier_sharded_good")
    assert good.test(logical_date=RUN_DATE).state == "success"
    before = _day(bq_client, destination)

    model_ref, trigger = fail_once
    trigger.touch()
    failing = load_dag_file(
        sharded_dag_source("somlier_sharded_fail", features_table, destination, model_ref=model_ref),
        "somlier_sharded_fail",
    )
    run = failing.test(logical_date=RUN_DATE)
    assert run.state == "failed"
    assert not trigger.exists()  # one shard did fail
    assert sorted(_mapped_scores(run).values()) == ["failed", "success", "success"]
    assert _day(bq_client, destination) == before


@pytest.mark.parametrize("shards", [0, -1, True, "3"])
def test_a_shard_count_that_is_not_a_positive_integer_is_refused(shards):
    from airflow.sdk import DAG

    from airflow_provider_somlier.errors import InvalidArgumentError
    from airflow_provider_somlier.operators.sharded import sharded_offline

    with DAG("bad_shards", schedule=None), pytest.raises(InvalidArgumentError, match=f"shards must be .* got {shards!r}"):
        sharded_offline(
            shards=shards, model_ref="m/1", dataset_ref="d.t", dataset_load_column="c", destination_table_ref="d.p"
        )


@pytest.mark.parametrize(
    ("argument", "value"),
    [("max_active_shards", 0), ("max_active_shards", -1), ("max_active_shards", "2"), ("max_active_shards", True),
     ("score_pool", ""), ("score_pool", "  "), ("score_pool", 3)],
)
def test_group_arguments_that_are_not_what_they_name_are_refused_by_name(argument, value):
    from airflow.sdk import DAG

    from airflow_provider_somlier.errors import InvalidArgumentError
    from airflow_provider_somlier.operators.sharded import sharded_offline

    with DAG("bad_group", schedule=None), pytest.raises(InvalidArgumentError, match=f"{argument} must be .* got {value!r}"):
        sharded_offline(
            shards=2, model_ref="m/1", dataset_ref="d.t", dataset_load_column="c", destination_table_ref="d.p",
            **{argument: value},
        )
