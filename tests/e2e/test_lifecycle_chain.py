"""The whole model lifecycle on real servers, as a new user runs it with MLflow 3 training code.

A small MLflow Project in a local git repository logs its model the way MLflow 3's
documentation shows → ``somlier online train`` over a grid → ``somlier search`` →
``somlier register --alias champion`` → ``MLOpsOfflineOperator`` scores a day on the
BigQuery emulator with ``@champion`` → the online server (``MODEL_TYPE=mlflow``) serves
the same version, and the same rows get the same predictions in both.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from click.testing import CliRunner

from airflow_provider_somlier.cli import main
from airflow_provider_somlier.devtools.sample_model import FEATURES
from tests.helpers import run_context

MLPROJECT = """name: {name}
entry_points:
  main:
    parameters:
      {param}: {{type: float, default: 1}}
    command: "python train.py {{{param}}}"
"""

TRAIN = """import sys

import mlflow
import sklearn
from sklearn.datasets import load_diabetes
from sklearn.metrics import mean_absolute_error
{imports}

value = float(sys.argv[1])
X, y = load_diabetes(return_X_y=True, as_frame=True)
with mlflow.start_run():
    model = {estimator}.fit(X, y)
    mlflow.log_metric("training_mae", mean_absolute_error(y, model.predict(X)))
    mlflow.sklearn.log_model(
        model, name="model", input_example=X.head(3),
        pip_requirements=[f"scikit-learn=={{sklearn.__version__}}"],{extra}
    )
"""

PROJECTS = {
    "ridge": dict(param="alpha", grid="0.1,100", imports="from sklearn.linear_model import Ridge",
                  estimator="Ridge(alpha=value)", extra=""),
    "hgb": dict(
        param="max_iter", grid="3,30",
        imports="from sklearn.ensemble import HistGradientBoostingRegressor",
        estimator="HistGradientBoostingRegressor(max_iter=int(value), random_state=0)",
        # skops (MLflow 3's default format) does not trust scikit-learn's tree predictor by default.
        extra='\n        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],',
    ),
}


@pytest.fixture(scope="module")
def project_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("chain") / "ml-projects"
    for name, spec in PROJECTS.items():
        folder = repo / "projects" / name
        folder.mkdir(parents=True)
        (folder / "MLproject").write_text(MLPROJECT.format(name=name, param=spec["param"]))
        (folder / "train.py").write_text(TRAIN.format(**spec))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "two projects"], check=True)
    return repo


def somlier(*args: str, uri: str) -> str:
    result = CliRunner().invoke(main, [*args, "--tracking_uri", uri])
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("kind", ["ridge", "hgb"])
def test_train_search_register_score_offline_and_serve_online_agree(
    kind, project_repo, mlflow_server, features_table, destination, bq_client, tmp_path, monkeypatch,
):
    from online_server.app import create_app
    from online_server.settings import Settings

    from airflow_provider_somlier.operators import MLOpsOfflineOperator

    spec = PROJECTS[kind]
    somlier("online", "train", f"projects/{kind}", "main", "--github_uri", str(project_repo),
            "--max_parallel", "2", f"--{spec['param']}", spec["grid"], uri=mlflow_server)
    best = json.loads(somlier("search", kind, "training_mae", "ASC", "--output", "json", uri=mlflow_server))[0]
    model_name = f"chain-{kind}"
    registered = json.loads(somlier("register", best["run_id"], model_name, "--alias", "champion", uri=mlflow_server))
    assert registered["is_newer_version"] is True
    version = registered["model_version"]

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_CHAIN", json.dumps({"conn_type": "mlflow", "host": mlflow_server}))
    summary = MLOpsOfflineOperator(
        task_id="predict", model_ref=f"{model_name}@champion", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=destination, passthrough_columns=["row_id"],
        mlflow_conn_id="mlflow_chain",
    ).execute(run_context(dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.timezone.utc)))
    assert str(summary["model_version"]) == version

    columns = ", ".join(f"f.{name}" for name in FEATURES)
    rows = list(bq_client.query(
        f"SELECT d.row_id, d.prediction, d.model_version, {columns} FROM `{destination}` d "
        f"JOIN `{features_table}` f USING (row_id) ORDER BY d.row_id LIMIT 20"
    ).result())
    assert len(rows) == 20 and {str(r.model_version) for r in rows} == {version}

    online = create_app(Settings(
        model_name=model_name, model_type="mlflow", model_ref=f"{model_name}@champion",
        mlflow_conn_id="mlflow_chain", work_dir=str(tmp_path / "work"),
    )).test_client()
    answer = online.post("/result", json={"test": [{name: row[name] for name in FEATURES} for row in rows]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["X-Model-Version"] == f"{model_name}/{version}"
    assert answer.get_json()["result"] == pytest.approx([row.prediction for row in rows], rel=1e-9)
