"""Bad input to `somlier register` and `somlier search` is refused by name, and registers nothing."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from tests.lifecycle.test_register import _log_run, somlier


def _versions(uri: str, name: str) -> list:
    return MlflowClient(tracking_uri=uri).search_model_versions(f"name = '{name}'")


@pytest.fixture(scope="module")
def run_id(mlflow_server):
    patch = pytest.MonkeyPatch()
    try:
        return _log_run(mlflow_server, patch, alpha=1.0)
    finally:
        patch.undo()


@pytest.mark.parametrize("alias", ["v3", "V12", "latest", "Latest"])
def test_an_alias_mlflow_reserves_is_refused_before_a_version_is_made(mlflow_server, run_id, alias):
    code, _, err = somlier("register", run_id, "reserved-alias", "--alias", alias, uri=mlflow_server)
    assert code == 2 and f"--alias '{alias}' is reserved by MLflow" in err
    assert _versions(mlflow_server, "reserved-alias") == []


def test_a_run_registered_again_is_its_version_compared_with_the_other_runs_not_itself(mlflow_server, run_id):
    """A retried register (a CI step run again) finds the version it made instead of stacking a copy."""
    first = json.loads(somlier("register", run_id, "registered-twice", uri=mlflow_server)[1])
    code, out, err = somlier("register", run_id, "registered-twice", "--alias", "champion", uri=mlflow_server)
    assert code == 0, err
    again = json.loads(out)
    assert (first["is_newer_version"], again["is_newer_version"]) == (True, True)
    assert first["model_version"] == again["model_version"] == "1"
    assert "already version 1 of 'registered-twice', nothing new registered" in again["message"]
    assert [v.version for v in _versions(mlflow_server, "registered-twice")] == ["1"]
    champion = MlflowClient(tracking_uri=mlflow_server).get_model_version_by_alias("registered-twice", "champion")
    assert champion.version == "1"


@pytest.mark.parametrize("name", ["", "모델", "bad/name", " "])
def test_a_model_name_is_named_as_typed(mlflow_server, run_id, name):
    code, _, err = somlier("register", run_id, name, uri=mlflow_server)
    assert code == 2 and f"MODEL_NAME {name!r} is invalid" in err, err


def test_an_artifact_path_the_run_does_not_hold_is_refused_not_replaced(mlflow_server, run_id):
    code, _, err = somlier("register", run_id, "wrong-path", "--artifact_path", "nosuch", uri=mlflow_server)
    assert code == 2 and "none is named 'nosuch'" in err and "(model)" in err, err
    assert _versions(mlflow_server, "wrong-path") == []


def test_training_data_without_rows_registers_nothing(mlflow_server, run_id, tmp_path):
    (tmp_path / "header.csv").write_text("age,bmi\n")
    code, _, err = somlier("register", run_id, "empty-training", "--training_data", str(tmp_path / "header.csv"),
                           uri=mlflow_server)
    assert code == 2 and "holds no rows (columns: age, bmi)" in err, err
    assert _versions(mlflow_server, "empty-training") == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["training_mae", "ASC", "--limit", "0"], "--limit 0 is invalid: expected a whole number from 1 to 50000"),
        (["training_mae", "ASC", "--limit", "-5"], "--limit -5 is invalid"),
        (["training_mae` OR 1", "ASC"], "STANDARD_METRIC 'training_mae` OR 1' is not a metric name"),
    ],
)
def test_search_refuses_bad_input_by_name(mlflow_server, run_id, args, message):
    code, _, err = somlier("search", "mlflow3-register", *args, uri=mlflow_server)
    assert code == 2 and message in err, err


def test_training_data_without_the_models_inputs_registers_nothing(mlflow_server, run_id, tmp_path):
    (tmp_path / "narrow.csv").write_text("age,sex,bmi\n0.1,0.2,0.3\n")
    code, _, err = somlier("register", run_id, "narrow-training", "--training_data", str(tmp_path / "narrow.csv"),
                           uri=mlflow_server)
    assert code == 2 and "--training_data has no column 'bp', 's1'" in err and "it has age, sex, bmi" in err, err
    assert _versions(mlflow_server, "narrow-training") == []


def test_the_same_run_registered_again_keeps_its_training_profile(mlflow_server, monkeypatch, tmp_path):
    """The same file again is harmless; another file would change the baseline of the versions
    already registered from the run, so it is refused by name and the profile stays."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_somlier.devtools.sample_model import diabetes_frame
    from airflow_provider_somlier.quality.training import logged_profile

    features, _ = diabetes_frame()
    pq.write_table(pa.Table.from_pandas(features, preserve_index=False), tmp_path / "train.parquet")
    pq.write_table(pa.Table.from_pandas(features.head(50), preserve_index=False), tmp_path / "other.parquet")
    run = _log_run(mlflow_server, monkeypatch, alpha=3.0)
    args = ("register", run, "profiled-once", "--training_data")
    assert somlier(*args, str(tmp_path / "train.parquet"), uri=mlflow_server)[0] == 0
    code, out, err = somlier(*args, str(tmp_path / "train.parquet"), uri=mlflow_server)
    assert code == 0, err
    assert json.loads(out)["model_version"] == "1"  # the version it made, not a copy
    code, _, err = somlier(*args, str(tmp_path / "other.parquet"), uri=mlflow_server)
    assert code == 2 and f"run {run} already holds another training profile" in err and f"{len(features)} rows" in err
    assert len(_versions(mlflow_server, "profiled-once")) == 1
    assert logged_profile(MlflowClient(tracking_uri=mlflow_server), run)["rows"] == len(features)


def test_an_alias_mlflow_fails_to_set_leaves_no_version_behind(mlflow_server, run_id, monkeypatch):
    """A failure after the version exists removes it: registering again is not judged against an orphan."""
    from mlflow.exceptions import MlflowException

    def refuse(self, name, alias, version):
        raise MlflowException(f"alias {alias!r} refused by the registry")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "set_registered_model_alias", refuse)
        code, _, err = somlier("register", run_id, "alias-fails", "--alias", "champion", uri=mlflow_server)
    assert code == 1 and "alias 'champion' refused by the registry" in err, err
    assert MlflowClient(tracking_uri=mlflow_server).search_registered_models("name = 'alias-fails'") == []
    code, out, err = somlier("register", run_id, "alias-fails", "--alias", "champion", uri=mlflow_server)
    assert code == 0, err
    assert json.loads(out)["is_newer_version"] is True and json.loads(out)["model_version"] == "1"


def test_a_metric_named_in_another_script_is_searchable(mlflow_server):
    """MLflow's metric keys may hold any letters, not only ASCII ones."""
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.create_experiment("unicode-metric")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "정확도", 0.9)
    client.set_terminated(run.info.run_id)
    code, out, err = somlier("search", "unicode-metric", "정확도", "DESC", "--output", "json", uri=mlflow_server)
    assert code == 0, err
    assert [row["run_id"] for row in json.loads(out)] == [run.info.run_id]


def test_an_artifact_path_an_mlflow2_run_does_not_hold_is_refused_not_replaced(mlflow_server, tmp_path):
    """A run with its model in an artifact folder (MLflow 2, register_v2): the folder is not swapped in."""
    import mlflow.sklearn
    from sklearn.linear_model import Ridge

    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.create_run(client.create_experiment("mlflow2-folder"))
    mlflow.sklearn.save_model(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), str(tmp_path / "model"))
    client.log_artifacts(run.info.run_id, str(tmp_path / "model"), "model")
    client.log_metric(run.info.run_id, "training_mae", 1.0)
    client.set_terminated(run.info.run_id)
    code, _, err = somlier("register", run.info.run_id, "wrong-folder", "--artifact_path", "nosuch",
                           uri=mlflow_server)
    assert code == 2 and "none is named 'nosuch'" in err and "artifact folder model/" in err, err
    assert _versions(mlflow_server, "wrong-folder") == []
    code, out, err = somlier("register", run.info.run_id, "wrong-folder", uri=mlflow_server)
    assert code == 0 and json.loads(out)["model_version"] == "1", err
