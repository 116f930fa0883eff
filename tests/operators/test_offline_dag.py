"""The operator inside a real Airflow DAG run (``dag.test()``): runs, reruns, backfills."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import load_dag_file, offline_dag_source, rows_per_day, run_context

UTC = dt.timezone.utc


def offline_dag(dag_id: str, features_table: str, destination: str, model_ref: str = "diabetes-ridge@champion"):
    """Write a DAG file into the dags folder (``dag.test()`` runs what the DAG processor sees) and load it."""
    source = offline_dag_source(
        dag_id, schedule="0 0 * * *", model_ref=model_ref, dataset_ref=features_table, dataset_load_column="load_date",
        destination_table_ref=destination, passthrough_columns=["row_id"],
    )
    return load_dag_file(source, dag_id)


def test_a_run_and_three_reruns_leave_one_copy_of_the_day(airflow_db, registry, features_table, destination, bq_client):
    dag = offline_dag("somlier_rerun", features_table, destination)
    for _ in range(4):
        run = dag.test(logical_date=dt.datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
        assert run.state == "success"
    assert rows_per_day(bq_client, destination) == {"2026-11-19": 50}
    ids = [r.row_id for r in bq_client.query(f"SELECT DISTINCT row_id FROM `{destination}`").result()]
    assert len(ids) == 50


def test_a_seven_day_backfill_writes_each_day_once(airflow_db, registry, features_table, destination, bq_client):
    dag = offline_dag("somlier_backfill", features_table, destination)
    for day in range(15, 22):
        run = dag.test(logical_date=dt.datetime(2026, 11, day, 0, 0, tzinfo=UTC))
        assert run.state == "success"
    # and the backfill again, as a "clear and rerun" from the UI would
    for day in (16, 18):
        assert dag.test(logical_date=dt.datetime(2026, 11, day, 0, 0, tzinfo=UTC)).state == "success"
    # a run at 2026-11-15 00:00 UTC is 09:00 KST on the 15th → target day the 14th
    assert rows_per_day(bq_client, destination) == {f"2026-11-{d}": 50 for d in range(14, 21)}


def test_rows_carry_their_lineage(airflow_db, registry, features_table, destination, bq_client):
    dag = offline_dag("somlier_lineage", features_table, destination)
    run = dag.test(logical_date=dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC))
    rows = list(
        bq_client.query(
            f"SELECT DISTINCT model_name, model_version, model_run_id, airflow_dag_id, airflow_run_id "
            f"FROM `{destination}`"
        ).result()
    )
    assert [tuple(r.values()) for r in rows] == [
        ("diabetes-ridge", 1, registry["v1"].run_id, "somlier_lineage", run.run_id)
    ]
    nulls = next(iter(bq_client.query(
        f"SELECT COUNTIF(prediction IS NULL) + COUNTIF(predicted_at IS NULL) AS n FROM `{destination}`"
    ).result())).n
    assert nulls == 0


def test_parallel_backfill_and_same_day_reruns_never_duplicate(registry, features_table, destination, bq_client):
    def run(day: int):
        op = MLOpsOfflineOperator(
            task_id="predict",
            model_ref="diabetes-ridge/1",
            dataset_ref=features_table,
            dataset_load_column="load_date",
            destination_table_ref=destination,
        )
        return op.execute(run_context(dt.datetime(2026, 11, day, 1, 0, tzinfo=UTC)))

    days = [15, 16, 17, 18, 15, 16, 17, 18]
    # the destination is created by the first writer; the others find it
    run(15)
    with ThreadPoolExecutor(max_workers=4) as pool:
        summaries = list(pool.map(run, days))
    assert all(s["rows_written"] == 50 for s in summaries)
    assert rows_per_day(bq_client, destination) == {f"2026-11-{d}": 50 for d in range(14, 18)}


def test_moving_the_alias_changes_the_version_of_the_next_run(registry, features_table, destination, bq_client):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry["uri"], registry_uri=registry["uri"])
    client.set_registered_model_alias("diabetes-ridge", "canary", registry["v1"].version)
    op = MLOpsOfflineOperator(
        task_id="predict",
        model_ref="diabetes-ridge@canary",
        dataset_ref=features_table,
        dataset_load_column="load_date",
        destination_table_ref=destination,
    )
    context = run_context(dt.datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    assert op.execute(context)["model_version"] == registry["v1"].version
    client.set_registered_model_alias("diabetes-ridge", "canary", registry["v2"].version)
    assert op.execute(context)["model_version"] == registry["v2"].version
    versions = {r.model_version for r in bq_client.query(f"SELECT DISTINCT model_version FROM `{destination}`").result()}
    assert versions == {int(registry["v2"].version)}
    assert rows_per_day(bq_client, destination) == {"2026-11-19": 50}


def test_lineage_text_is_stored_verbatim(registry, features_table, destination, bq_client):
    """Run ids typed into the UI can hold quotes, backslashes, newlines: they land as they were."""
    run_id = "manual__it's a \\'test\\'\n\tfrom the UI — 한국어 🎉"
    summary = MLOpsOfflineOperator(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=destination, passthrough_columns=["row_id"],
    ).execute(run_context(dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC), dag_id="dag.with-odd_id", run_id=run_id))
    rows = list(bq_client.query(
        f"SELECT DISTINCT airflow_dag_id, airflow_run_id, CAST(target_date AS STRING) AS day FROM `{destination}`"
    ).result())
    assert [tuple(r.values()) for r in rows] == [("dag.with-odd_id", run_id, summary["target_date"])]
