"""Registering works however the tracking URI is given, prints JSON alone, and writes nothing in the cwd.

Each command runs in its own process with a clean environment (no ``MLFLOW_TRACKING_URI``)
from an empty folder, the way a user or an Airflow worker runs it: MLflow's SQL registry
store resolves ``models:/m-…`` sources through the process-global tracking URI, which an
in-process test with the URI exported would never notice.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

LOG_RUN = textwrap.dedent("""
    import sys
    import mlflow, mlflow.sklearn, sklearn
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    features, target = load_diabetes(return_X_y=True, as_frame=True)
    mlflow.set_experiment("register-anywhere")
    with mlflow.start_run() as run:
        mlflow.log_metric("training_mae", 42.0)
        mlflow.sklearn.log_model(Ridge().fit(features, target), name="model",
                                 pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    print(run.info.run_id)
""")

REGISTER_BEST = textwrap.dedent("""
    import json, sys
    from airflow_provider_somlier.hooks.mlflow import MLflowHook
    from airflow_provider_somlier.lifecycle.registry import best_finished_run, register_run

    client = MLflowHook().get_conn()
    best = best_finished_run(client, [sys.argv[1]], "training_mae", "ASC")
    print(json.dumps(register_run(client, best.run_id, sys.argv[2], alias="champion")))
""")


def _clean_env(**extra: str) -> dict[str, str]:
    """The test session's Airflow settings and nothing of MLflow's: no global tracking URI."""
    keep = {key: value for key, value in os.environ.items() if key.startswith("AIRFLOW__") or key == "AIRFLOW_HOME"}
    return {**keep, "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(REPO),
            "OPENBLAS_NUM_THREADS": "1", **extra}


def _python(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=_clean_env(**env), capture_output=True, text=True,
                          timeout=300)


def _somlier(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return _python(["-m", "airflow_provider_somlier.cli", *args], cwd, **env)


@pytest.fixture
def empty_cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory) -> tuple[str, str]:
    """(tracking URI, run id) of a run that logged its model the MLflow 3 way into a SQLite store."""
    store = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    done = _python(["-c", LOG_RUN], store, MLFLOW_TRACKING_URI=uri)
    assert done.returncode == 0, done.stderr
    return uri, done.stdout.split()[-1]


@pytest.fixture(scope="module")
def http_run(mlflow_server, tmp_path_factory) -> str:
    done = _python(["-c", LOG_RUN], tmp_path_factory.mktemp("log"), MLFLOW_TRACKING_URI=mlflow_server)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def _assert_loads(uri: str, name: str, monkeypatch) -> None:
    """The registered version resolves and predicts through the provider's own hook."""
    from airflow_provider_somlier.hooks.mlflow import MLflowHook

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_CHECK", json.dumps({"conn_type": "mlflow", "host": uri}))
    hook = MLflowHook(mlflow_conn_id="mlflow_check")
    model = hook.load_pyfunc(hook.resolve(f"{name}/1"))
    assert model.predict([[0.0] * 10]).shape == (1,)


def _answer(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_register_with_the_flag_against_sqlite_needs_no_global_uri_and_leaves_the_cwd_empty(
    sqlite_run, empty_cwd, monkeypatch
):
    uri, run_id = sqlite_run
    answer = _answer(_somlier(["register", run_id, "by-flag", "--tracking_uri", uri], empty_cwd))
    assert answer["model_version"] == "1" and answer["is_newer_version"] is True
    assert list(empty_cwd.iterdir()) == []
    _assert_loads(uri, "by-flag", monkeypatch)


def test_register_with_the_environment_against_sqlite_leaves_the_cwd_empty(sqlite_run, empty_cwd, monkeypatch):
    uri, run_id = sqlite_run
    answer = _answer(_somlier(["register", run_id, "by-env"], empty_cwd, MLFLOW_TRACKING_URI=uri))
    assert answer["model_version"] == "1"
    assert list(empty_cwd.iterdir()) == []
    _assert_loads(uri, "by-env", monkeypatch)


def test_register_best_through_the_airflow_connection_leaves_the_cwd_empty(sqlite_run, empty_cwd, monkeypatch):
    """What the training DAG's register_best does, in a worker process whose only registry setting is the connection."""
    uri, run_id = sqlite_run
    connection = json.dumps({"conn_type": "mlflow", "host": uri})
    answer = _answer(_python(["-c", REGISTER_BEST, run_id, "by-connection"], empty_cwd,
                             AIRFLOW_CONN_MLFLOW_DEFAULT=connection))
    assert answer["model_version"] == "1" and "alias 'champion' now points at version 1" in answer["message"]
    assert list(empty_cwd.iterdir()) == []
    _assert_loads(uri, "by-connection", monkeypatch)


def test_register_against_an_http_server_leaves_the_cwd_empty(mlflow_server, http_run, empty_cwd, monkeypatch):
    answer = _answer(_somlier(["register", http_run, "over-http", "--tracking_uri", mlflow_server], empty_cwd))
    assert answer["model_version"] == "1"
    assert list(empty_cwd.iterdir()) == []
    _assert_loads(mlflow_server, "over-http", monkeypatch)


def test_register_v2_prints_only_its_json_and_leaves_the_cwd_empty(tmp_path, empty_cwd):
    """skops looks names up on Airflow's deprecated aliases while saving; none of that reaches stdout."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    weights = tmp_path / "ridge.pkl"
    weights.write_bytes(pickle.dumps(Ridge().fit(*load_diabetes(return_X_y=True))))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    done = _somlier(["online", "register_v2", "sklearn", str(weights), "outside", "--tracking_uri", uri], empty_cwd)
    assert _answer(done)["model_version"] == "1"
    assert "DeprecatedImportWarning" not in done.stderr
    assert list(empty_cwd.iterdir()) == []
    assert (tmp_path / "store" / "mlruns").is_dir()  # the store's artifacts live beside its database


def test_search_as_json_prints_only_its_json(sqlite_run, empty_cwd):
    uri, run_id = sqlite_run
    done = _somlier(["search", "register-anywhere", "training_mae", "ASC", "--output", "json", "--tracking_uri", uri],
                    empty_cwd)
    assert [run["run_id"] for run in _answer(done)] == [run_id]
    assert list(empty_cwd.iterdir()) == []
