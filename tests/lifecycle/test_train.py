"""`somlier online train` over a grid, on a real git repository holding a small MLproject."""

from __future__ import annotations

import json
import subprocess

from click.testing import CliRunner
from mlflow import MlflowClient

from airflow_provider_somlier.cli import main

MLPROJECT = """name: ridge
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 1.0}
      fail: {type: float, default: 0}
    command: "python train.py {alpha} {fail}"
"""
TRAIN = """import sys
import mlflow
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error
alpha, fail = float(sys.argv[1]), float(sys.argv[2])
if fail:
    sys.exit("this combination fails on purpose")
X, y = load_diabetes(return_X_y=True)
with mlflow.start_run():
    mlflow.log_metric("training_mae", mean_absolute_error(y, Ridge(alpha=alpha).fit(X, y).predict(X)))
"""


def _project_repo(tmp_path):
    """A real git repository holding the MLproject under example-projects/ridge."""
    repo = tmp_path / "ml-projects"
    (repo / "example-projects" / "ridge").mkdir(parents=True)
    (repo / "example-projects" / "ridge" / "MLproject").write_text(MLPROJECT)
    (repo / "example-projects" / "ridge" / "train.py").write_text(TRAIN)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "ridge project"], check=True)
    return repo


def test_a_grid_trains_in_parallel_and_failures_do_not_stop_the_others(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps run artifacts under ./mlruns
    repo = _project_repo(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    result = CliRunner().invoke(main, [
        "online", "train", "example-projects/ridge", "main", "--github_uri", repo.as_uri(), "--tracking_uri", uri,
        "--max_parallel", "2", "--alpha", "0.5,1.0", "--fail", "0,1",
    ])
    assert result.exit_code == 1, result.stderr
    assert result.stdout.strip() == "2 succeeded, 2 failed", result.stderr
    assert "fails on purpose" in result.stderr

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("ridge").experiment_id], filter_string="attributes.status = 'FINISHED'")
    assert sorted(r.data.params["alpha"] for r in runs) == ["0.5", "1.0"]
    assert all("training_mae" in r.data.metrics for r in runs)
    searched = CliRunner().invoke(main, ["search", "ridge", "training_mae", "ASC", "--output", "json", "--tracking_uri", uri])
    assert json.loads(searched.stdout)[0]["params"]["alpha"] == "0.5"


def test_a_malformed_grid_exits_2_before_training(tmp_path):
    result = CliRunner().invoke(main, [
        "online", "train", "p", "main", "--github_uri", "file:///nowhere", "--tracking_uri", "sqlite:///x.db",
        "--learning_rate", "0.001..0.005",
    ])
    assert result.exit_code == 2 and "--learning_rate '0.001..0.005' is malformed" in result.stderr


def test_the_training_dag_maps_one_task_per_combination(airflow_db, tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps run artifacts under ./mlruns
    from tests.helpers import load_dag_file

    repo = _project_repo(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": uri}))
    source = (Path(__file__).resolve().parents[2] / "dags" / "somlier_train_grid.py").read_text()
    dag = load_dag_file(source, "somlier_train_grid")
    run = dag.test(run_conf={"project_name": "example-projects/ridge", "project_ref": "main",
                             "github_uri": repo.as_uri(), "grid": {"alpha": "0.5,1.0,2.0"}})
    assert run.state == "success"
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("ridge").experiment_id])
    assert sorted(r.data.params["alpha"] for r in runs) == ["0.5", "1.0", "2.0"]
