"""`somlier register` on runs that log their model the MLflow 3 way, against a real MLflow server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from airflow_provider_somlier.cli import main
from airflow_provider_somlier.devtools.sample_model import FEATURES, diabetes_frame

EXPERIMENT = "mlflow3-register"


def _log_run(uri: str, monkeypatch, *, alpha: float | None, status: str = "FINISHED", metric: bool = True) -> str:
    """A training run as MLflow 3's documentation writes one: fluent API, ``log_model(model, name="model")``."""
    import mlflow
    import mlflow.sklearn
    import sklearn
    from sklearn.linear_model import Ridge

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")  # set_experiment exports it; undone with the patch
    features, target = diabetes_frame()
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run() as run:
        if metric:
            mlflow.log_metric("training_mae", 100.0 if alpha is None else 40.0 + alpha)
        if alpha is not None:
            model = Ridge(alpha=alpha).fit(features, target)
            mlflow.sklearn.log_model(
                model, name="model", input_example=features.head(2),
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )
    if status != "FINISHED":
        MlflowClient(tracking_uri=uri).set_terminated(run.info.run_id, status)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    return run.info.run_id


def somlier(*args, uri):
    result = CliRunner().invoke(main, [*args, "--tracking_uri", uri])
    return result.exit_code, result.stdout, result.stderr


def test_the_version_registered_from_an_mlflow3_run_loads_and_predicts(mlflow_server, monkeypatch):
    from airflow_provider_somlier.hooks.mlflow import MLflowHook

    run_id = _log_run(mlflow_server, monkeypatch, alpha=1.0)
    code, out, err = somlier("register", run_id, "mlflow3-ridge", "--alias", "champion", uri=mlflow_server)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["model_version"] == "1" and answer["is_newer_version"] is True

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_REG", json.dumps({"conn_type": "mlflow", "host": mlflow_server}))
    hook = MLflowHook(mlflow_conn_id="mlflow_reg")
    resolved = hook.resolve("mlflow3-ridge@champion")
    assert (resolved.version, resolved.run_id) == ("1", run_id)
    model = hook.load_pyfunc(resolved)
    assert model.predict(diabetes_frame()[0][list(FEATURES)].head(3)).shape == (3,)


def test_a_run_that_did_not_finish_is_refused(mlflow_server, monkeypatch):
    run_id = _log_run(mlflow_server, monkeypatch, alpha=1.0, status="FAILED")
    code, _, err = somlier("register", run_id, "never-registered", uri=mlflow_server)
    assert code == 2 and f"run {run_id} is FAILED, not FINISHED" in err
    assert MlflowClient(tracking_uri=mlflow_server).search_registered_models("name = 'never-registered'") == []


def test_a_run_without_a_model_is_refused(mlflow_server, monkeypatch):
    run_id = _log_run(mlflow_server, monkeypatch, alpha=None)
    code, _, err = somlier("register", run_id, "never-registered", uri=mlflow_server)
    assert code == 2 and f"run {run_id} holds no model" in err and "log_model(model, name='model')" in err


def test_a_run_without_the_metric_is_refused(mlflow_server, monkeypatch):
    run_id = _log_run(mlflow_server, monkeypatch, alpha=1.0, metric=False)
    code, _, err = somlier("register", run_id, "never-registered", uri=mlflow_server)
    assert code == 2 and "logged no metric 'training_mae'" in err


def test_a_model_name_with_a_quote_is_refused_by_name(mlflow_server):
    code, _, err = somlier("register", "0" * 32, "it's", uri=mlflow_server)
    assert code == 2 and "it's" in err


@pytest.fixture(scope="module")
def three_runs(mlflow_server):
    """Runs scoring 40.5 (best), 45 (worst) and 42 (middle) on training_mae, each with its logged model."""
    patch = pytest.MonkeyPatch()
    try:
        return [_log_run(mlflow_server, patch, alpha=alpha) for alpha in (0.5, 5.0, 2.0)]
    finally:
        patch.undo()


def test_is_newer_version_compares_with_the_best_version_not_the_latest(mlflow_server, three_runs):
    best, worst, middle = three_runs
    answers = [
        json.loads(somlier("register", run, "best-vs-latest", "--alias", "champion", uri=mlflow_server)[1])
        for run in (best, worst, middle)
    ]
    assert [a["is_newer_version"] for a in answers] == [True, False, False]
    assert "best registered version 1" in answers[2]["message"]
    champion = MlflowClient(tracking_uri=mlflow_server).get_model_version_by_alias("best-vs-latest", "champion")
    assert champion.version == "1"


def test_desc_order_moves_the_alias_to_a_higher_metric(mlflow_server, three_runs):
    best, worst, _ = three_runs
    for run in (best, worst):
        code, out, _ = somlier("register", run, "higher-is-better", "--order_by", "DESC", "--alias", "top",
                               uri=mlflow_server)
    assert code == 0 and json.loads(out)["is_newer_version"] is True
    top = MlflowClient(tracking_uri=mlflow_server).get_model_version_by_alias("higher-is-better", "top")
    assert (top.version, top.run_id) == ("2", worst)


def test_a_training_file_is_profiled_and_read_back_as_the_versions_training_baseline(
    mlflow_server, monkeypatch, tmp_path
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_somlier.hooks.mlflow import MLflowHook
    from airflow_provider_somlier.quality.day_gate import TRAINING_PROFILE_PATH
    from airflow_provider_somlier.quality.profile import DayProfile

    features, _ = diabetes_frame()
    pq.write_table(pa.Table.from_pandas(features, preserve_index=False), tmp_path / "train.parquet")
    run_id = _log_run(mlflow_server, monkeypatch, alpha=2.0)
    code, out, err = somlier("register", run_id, "profiled-ridge", "--training_data", str(tmp_path / "train.parquet"),
                             uri=mlflow_server)
    assert code == 0, err
    assert json.loads(out)["training_profile"] == f"runs:/{run_id}/{TRAINING_PROFILE_PATH}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_PROFILED", json.dumps({"conn_type": "mlflow", "host": mlflow_server}))
    profile = DayProfile.from_dict(MLflowHook(mlflow_conn_id="mlflow_profiled").load_run_json(run_id, TRAINING_PROFILE_PATH))
    assert profile.rows == len(features) and list(profile.columns) == list(FEATURES)

    code, _, err = somlier("register", run_id, "profiled-ridge", "--training_data", str(tmp_path / "train.txt"),
                           uri=mlflow_server)
    assert code == 2 and "must be a .parquet or .csv file" in err
