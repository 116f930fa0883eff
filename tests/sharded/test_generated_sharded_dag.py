"""`somlier offline create_v2 … --shards N` generates a sharded DAG that parses and scores a day."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from airflow_provider_somlier.cli import main
from tests.helpers import rows_per_day
from tests.sharded.conftest import SHARDED_DAY_ROWS


def _create(*args: str):
    return CliRunner().invoke(main, ["offline", "create_v2", *args], env={"SOMLIER_CONFIG": "/nonexistent"})


def test_a_generated_sharded_dag_parses_and_scores_the_day(
    airflow_db, registry, sharded_features, destination, bq_client
):
    airflow_home = Path(os.environ["AIRFLOW_HOME"])  # its dags folder is where dag.test() finds the file
    if not (airflow_home / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(airflow_home)], check=True)
    dag_id = f"generated_sharded_{destination.rsplit('.', 1)[1]}"
    result = _create(
        "diabetes-ridge@champion", dag_id, "0 9 * * *", sharded_features.split(".", 1)[1], "load_date",
        destination.split(".", 1)[1], "--start_date", "2026-11-01", "--shards", "3", "--local_repo", str(airflow_home),
    )
    assert result.exit_code == 0, result.stderr  # the CLI linted it in a DagBag: plan, score, commit
    path = airflow_home / "dags" / f"{dag_id}.py"
    source = path.read_text()
    assert "--shards 3" in source.splitlines()[3] and "shards=3," in source
    spec = importlib.util.spec_from_file_location(dag_id, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dag.test(logical_date=dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.timezone.utc)).state == "success"
    assert rows_per_day(bq_client, destination) == {"2026-11-19": SHARDED_DAY_ROWS}


def test_a_shard_count_that_is_not_a_whole_number_from_one_is_refused_by_name():
    for value in ("0", "-2", "2.5", "three", "1001"):
        result = _create("m@a", "d", "0 9 * * *", "a.b", "load_date", "a.p", "--shards", value, "--dry_run")
        assert result.exit_code != 0
        assert f"--shards '{value}' is invalid: expected a whole number from 1 to 1000" in result.output + result.stderr
