"""Fixtures of the sharded tests: a model that fails one shard on demand, a DAG file of one sharded group."""

from __future__ import annotations

import datetime as dt

import pytest

FAIL_ONCE_MODEL = "diabetes-fail-once"
SHARDED_DAY = dt.date(2026, 11, 19)
# The warehouse (and the emulator, like it) opens one stream for a read under ~1 MB,
# however many are asked for: this day is big enough to be split.
SHARDED_DAY_ROWS = 12_000

DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from airflow_provider_somlier.operators.sharded import sharded_offline

with DAG({dag_id!r}, schedule="0 0 * * *", start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc), catchup=False) as dag:
    sharded_offline(
        "predict",
        shards={shards},
        model_ref={model_ref!r},
        dataset_ref={features_table!r},
        dataset_load_column="load_date",
        destination_table_ref={destination!r},
        passthrough_columns=["row_id"],
        gcp_conn_id={gcp_conn_id!r},
        retries=0,
    )
"""


RUN_DATE = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.timezone.utc)  # 12:00 KST → target day 2026-11-19


def step_context(pushed: dict) -> dict:
    """A task context for running one sharded step in-process; XComs it pushes land in ``pushed``."""
    from types import SimpleNamespace

    from tests.helpers import run_context

    context = run_context(RUN_DATE, dag_id="sharded_steps")
    context["ti"] = SimpleNamespace(
        dag_id="sharded_steps", task_id="plan", try_number=1, xcom_push=lambda key, value: pushed.__setitem__(key, value)
    )
    return context


def step_kwargs(features: str, destination: str) -> dict:
    return dict(model_ref="diabetes-ridge@champion", dataset_ref=features, dataset_load_column="load_date",
                destination_table_ref=destination, passthrough_columns=["row_id"])


def sharded_dag_source(dag_id: str, features_table: str, destination: str, *, shards: int = 3,
                       model_ref: str = "diabetes-ridge@champion", gcp_conn_id: str = "google_cloud_default") -> str:
    return DAG_FILE.format(**locals())


@pytest.fixture(scope="session")
def fail_once(registry, session_dir):
    """``(model_ref, trigger)``: create the trigger file and the next ``predict`` anywhere fails, once."""
    from tests.sharded.fail_once_model import register_fail_once

    trigger = session_dir / "fail-one-shard"
    registered = register_fail_once(registry["uri"], FAIL_ONCE_MODEL, str(trigger), (session_dir / "mlartifacts").as_uri())
    return f"{FAIL_ONCE_MODEL}/{registered.version}", trigger


@pytest.fixture(scope="session")
def hang_once(registry, session_dir):
    """``(model_ref, trigger)``: create the trigger file and the next ``predict`` anywhere hangs, once."""
    from tests.sharded.fail_once_model import register_fail_once

    trigger = session_dir / "hang-one-shard"
    registered = register_fail_once(
        registry["uri"], "diabetes-hang-once", str(trigger), (session_dir / "mlartifacts").as_uri(), hang=True
    )
    return f"diabetes-hang-once/{registered.version}", trigger


@pytest.fixture(scope="session")
def sharded_features(emulator, bq_client) -> str:
    """A feature table with one day big enough for the warehouse to split into several streams."""
    from airflow_provider_somlier.devtools.sample_data import load_features

    table_id = f"{emulator.project}.features.sharded_day"
    load_features(bq_client, table_id, [SHARDED_DAY], SHARDED_DAY_ROWS)
    return table_id


@pytest.fixture
def destination(destination, bq_client):
    """The shared fresh destination; shard staging tables a test leaves on purpose (a failed shard,
    a refused commit) are dropped with it."""
    yield destination
    from airflow_provider_somlier.hooks.bigquery_staging import is_staging_of

    project_dataset, table = destination.rsplit(".", 1)
    for leftover in bq_client.list_tables(project_dataset):
        if is_staging_of(leftover.table_id, table):
            bq_client.delete_table(leftover.reference, not_found_ok=True)
