"""`somlier online train` over a grid, on a real git repository holding a small MLproject."""

from __future__ import annotations

import json
import subprocess

import pytest

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


def _git_state(repo):
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    return {"status": git("status", "--porcelain"), "head": git("rev-parse", "HEAD"), "branch": git("branch", "--show-current"),
            "remotes": git("remote"), "refs": git("for-each-ref"), "shallow": (repo / ".git" / "shallow").exists()}


def test_a_grid_trains_in_parallel_on_one_commit_without_touching_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps run artifacts under ./mlruns
    repo = _project_repo(tmp_path)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    # An uncommitted edit that would break every combination if training ran in the work tree.
    (repo / "example-projects" / "ridge" / "train.py").write_text("raise SystemExit('uncommitted edit ran')\n")
    before = _git_state(repo)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    result = CliRunner().invoke(main, [
        "online", "train", "example-projects/ridge", "main", "--github_uri", str(repo), "--tracking_uri", uri,
        "--max_parallel", "2", "--fail", "0,1", "--alpha=0.5,1.0",
    ])
    assert result.exit_code == 1, result.stderr
    assert result.stdout.strip() == "2 succeeded, 2 failed", result.stderr
    assert "fails on purpose" in result.stderr and f"at {commit}" in result.stderr
    assert _git_state(repo) == before

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("ridge").experiment_id])
    assert {r.data.tags["mlflow.source.git.commit"] for r in runs} == {commit}
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.params["alpha"] for r in finished) == ["0.5", "1.0"]
    assert all("training_mae" in r.data.metrics for r in finished)
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(failed) == 2 and all("fails on purpose" in r.data.tags["somlier.failure"] for r in failed)
    searched = CliRunner().invoke(main, ["search", "ridge", "training_mae", "ASC", "--output", "json", "--tracking_uri", uri])
    assert json.loads(searched.stdout)[0]["params"]["alpha"] == "0.5"
    # the PROJECT_NAME given to train works as well
    again = CliRunner().invoke(main, ["search", "example-projects/ridge", "training_mae", "ASC", "--output", "json",
                                      "--tracking_uri", uri])
    assert json.loads(again.stdout) == json.loads(searched.stdout), again.stderr


@pytest.mark.parametrize("args, message", [
    (("example-projects/ridge", "no-such-branch"), "PROJECT_REF 'no-such-branch' is not a branch, tag or commit"),
    (("example-projects/lasso", "main"), "PROJECT_NAME 'example-projects/lasso' is not a folder holding an MLproject"),
    (("../..", "main"), "PROJECT_NAME '../..'"),
    (("example-projects/ridge", "--upload-pack=x"), "must name a branch"),
    (("example-projects/ridge", "main", "--max_parallel", "0"), "0 is not in the range x>=1"),
    (("example-projects/ridge", "main", "--alpha"), "'--alpha' has no value"),
    (("example-projects/ridge", "main", "--alpha", "0..1e12..1"), "--alpha '0..1e12..1' has 1000000000000 values"),
    (("example-projects/ridge", "main", "--alpha", "0..1..0"), "--alpha '0..1..0': INCREMENT 0 must be above 0"),
    (("example-projects/ridge", "main", "--alpha", "1..0..1"), "START 1 must be below END 0"),
    (("example-projects/ridge", "main", "--alpha", "0.1", "--alpha=0.2"),
     "--alpha is given twice ('0.1' and '0.2'); give its values once, e.g. --alpha '0.1,0.2'"),
    (("example-projects/ridge", "main", "--max-parallel", "1"), "did you mean --max_parallel?"),
    (("example-projects/ridge", "main", "--max_paralel", "1"), "did you mean --max_parallel?"),
    (("example-projects/ridge", "main", "--alpah", "0.1"),
     "--alpah is not a parameter of example-projects/ridge's main entry point; did you mean --alpha? "
     "(its MLproject declares alpha, fail; nothing was trained)"),
])
def test_bad_training_inputs_exit_2_before_any_run(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    repo = _project_repo(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    project, ref, *rest = args
    result = CliRunner().invoke(main, [
        "online", "train", project, ref, "--github_uri", repo.as_uri(), "--tracking_uri", uri, *(rest or ["--alpha", "1"]),
    ])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "mlflow.db").exists()  # refused before anything was created, the registry included


def test_parallel_experiment_creation_yields_one_experiment(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from airflow_provider_somlier.lifecycle.train import ensure_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_experiment(uri, "warm-up")  # the store's tables, created once
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: ensure_experiment(uri, "raced"), range(8)))
    assert len(set(ids)) == 1


def test_a_malformed_grid_exits_2_before_training(tmp_path):
    result = CliRunner().invoke(main, [
        "online", "train", "p", "main", "--github_uri", "file:///nowhere", "--tracking_uri", "sqlite:///x.db",
        "--learning_rate", "0.001..0.005",
    ])
    assert result.exit_code == 2 and "--learning_rate '0.001..0.005' is malformed" in result.stderr


TRAIN_WITH_MODEL = """import sys
import mlflow
import sklearn
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error
alpha = float(sys.argv[1])
if alpha > 5:
    sys.exit("alpha above 5 fails on purpose")
X, y = load_diabetes(return_X_y=True, as_frame=True)
with mlflow.start_run():
    model = Ridge(alpha=alpha).fit(X, y)
    mlflow.log_metric("training_mae", mean_absolute_error(y, model.predict(X)))
    mlflow.sklearn.log_model(model, name="model", pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
"""


def test_the_training_dag_trains_each_combination_and_registers_the_best(airflow_db, tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps run artifacts under ./mlruns
    from tests.helpers import load_dag_file

    repo = _project_repo(tmp_path)
    (repo / "example-projects" / "ridge" / "train.py").write_text(TRAIN_WITH_MODEL)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "log the model"],
                   check=True)
    (tmp_path / "store").mkdir()  # not the cwd: register_best must find the store through the connection alone
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": uri}))
    source = (Path(__file__).resolve().parents[2] / "dags" / "somlier_train_grid.py").read_text()
    dag = load_dag_file(source, "somlier_train_grid")
    run = dag.test(run_conf={"project_name": "example-projects/ridge", "project_ref": "main",
                             "github_uri": repo.as_uri(), "grid": {"alpha": [0.5, 2.0, 9.0]},
                             "model_name": "dag-ridge"})
    states = {(ti.task_id, ti.rendered_map_index): (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert states[("train", "alpha=0.5")][0] == "success" and states[("train", "alpha=2.0")][0] == "success"
    assert states[("train", "alpha=9.0")] == ("failed", 1)  # the project's own failure is not retried
    assert states[("register_best", None)][0] == "success"

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("ridge").experiment_id])
    assert sorted(r.data.params["alpha"] for r in runs) == ["0.5", "2.0", "9.0"]
    champion = client.get_model_version_by_alias("dag-ridge", "champion")
    assert client.get_run(champion.run_id).data.params["alpha"] == "0.5"
