"""`somlier online register_v2` from a GCS emulator and from local files, into a SQLite registry."""

from __future__ import annotations

import json
import pickle

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from airflow_provider_somlier.cli import main


class OwnRidge:
    """A user's own estimator class: skops does not trust it, and SoMLier will not trust it for them."""

    def fit(self, features, target):
        from sklearn.linear_model import Ridge

        self.inner = Ridge().fit(features, target)
        return self

    def predict(self, features):
        return self.inner.predict(features)


@pytest.fixture(scope="module")
def weights(gcs, tmp_path_factory):
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    folder = tmp_path_factory.mktemp("weights")
    features, target = load_diabetes(return_X_y=True)
    model = Ridge().fit(features, target)
    (folder / "ridge.pkl").write_bytes(pickle.dumps(model))
    (folder / "hgb.pkl").write_bytes(pickle.dumps(HistGradientBoostingRegressor(max_iter=5).fit(features, target)))
    (folder / "own_class.pkl").write_bytes(pickle.dumps(OwnRidge().fit(features, target)))
    (folder / "not_a_model.pkl").write_bytes(pickle.dumps({"a": 1}))
    (folder / "garbage.pkl").write_bytes(b"not a pickle")
    bucket = gcs["client"].create_bucket("artifacts")
    bucket.blob("team/ridge.pkl").upload_from_filename(str(folder / "ridge.pkl"))
    return folder


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps run artifacts under ./mlruns


def register(*args, uri):
    result = CliRunner().invoke(main, ["online", "register_v2", *args, "--tracking_uri", uri])
    return result.exit_code, result.stdout, result.stderr


def test_a_sklearn_model_from_gcs_becomes_a_loadable_registry_version(weights, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out, err = register("sklearn", "gs://artifacts/team/ridge.pkl", "outside-ridge", uri=uri)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["model_version"] == "1"
    import mlflow.pyfunc

    path = MlflowClient(tracking_uri=uri).download_artifacts(answer["run_id"], "model", str(tmp_path))
    assert mlflow.pyfunc.load_model(path).predict([[0.0] * 10]).shape == (1,)
    code, out, _ = register("sklearn", str(weights / "ridge.pkl"), "outside-ridge", uri=uri)
    assert code == 0 and json.loads(out)["model_version"] == "2"


def test_a_hist_gradient_boosting_model_registers_in_the_skops_format_and_loads(weights, tmp_path):
    import mlflow.pyfunc

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out, err = register("sklearn", str(weights / "hgb.pkl"), "outside-hgb", uri=uri)
    assert code == 0, err
    path = MlflowClient(tracking_uri=uri).download_artifacts(json.loads(out)["run_id"], "model", str(tmp_path))
    assert (tmp_path / "model" / "model.skops").is_file()
    assert mlflow.pyfunc.load_model(path).predict([[0.0] * 10]).shape == (1,)


def test_a_model_of_an_untrusted_class_is_refused_naming_the_type(weights, tmp_path):
    code, _, err = register("sklearn", str(weights / "own_class.pkl"), "m", uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert code == 2 and "OwnRidge" in err and "skops does not trust" in err


@pytest.mark.parametrize("args, message", [
    (("xgboost", "gs://artifacts/team/ridge.pkl", "m"), "MODEL_TYPE 'xgboost' must be one of sklearn, pytorch"),
    (("sklearn", "gs://artifacts/team/missing.pkl", "m"), "does not exist"),
    (("sklearn", "gs://artifacts", "m"), "malformed"),
    (("sklearn", "/no/such/file.pkl", "m"), "neither gs://"),
])
def test_bad_register_v2_inputs_exit_2(weights, tmp_path, args, message):
    code, _, err = register(*args, uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert code == 2 and message in err


@pytest.mark.parametrize("name, message", [("not_a_model.pkl", "has no predict()"), ("garbage.pkl", "not a pickled")])
def test_files_that_are_not_models_are_refused(weights, tmp_path, name, message):
    code, _, err = register("sklearn", str(weights / name), "m", uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert code == 2 and message in err


def test_pytorch_needs_its_class_from_git(weights, tmp_path):
    pytest.importorskip("torch", reason="torch is an optional, heavy extra; not installed in this environment")
    code, _, err = register("pytorch", str(weights / "ridge.pkl"), "m", uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert code == 2 and "pytorch needs GITHUB_URI" in err


def test_a_training_file_is_profiled_with_the_registered_version(weights, tmp_path):
    """--training_data: the version's run carries the profile baseline='training' reads; a bad file registers nothing."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv
    from sklearn.datasets import load_diabetes

    from airflow_provider_somlier.quality.day_gate import TRAINING_PROFILE_PATH
    from airflow_provider_somlier.quality.profile import DayProfile

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    features, _ = load_diabetes(return_X_y=True)
    frame = pa.table({f"x{i}": features[:, i] for i in range(features.shape[1])})
    pyarrow.csv.write_csv(frame, tmp_path / "train.csv")
    code, _, err = register("sklearn", str(weights / "ridge.pkl"), "profiled-outside", "--training_data",
                            str(tmp_path / "missing.csv"), uri=uri)
    assert code == 2 and "--training_data" in err and "does not exist" in err
    assert MlflowClient(tracking_uri=uri).search_registered_models() == []  # nothing registered

    code, out, err = register("sklearn", str(weights / "ridge.pkl"), "profiled-outside", "--training_data",
                              str(tmp_path / "train.csv"), uri=uri)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["training_profile"] == f"runs:/{answer['run_id']}/{TRAINING_PROFILE_PATH}"
    logged = MlflowClient(tracking_uri=uri).download_artifacts(answer["run_id"], TRAINING_PROFILE_PATH, str(tmp_path))
    profile = DayProfile.from_dict(json.loads(open(logged).read()))
    assert profile.rows == features.shape[0] and list(profile.columns) == list(frame.column_names)
    assert np.isclose(profile.columns["x0"].mean, features[:, 0].mean(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fitted_on, columns, message", [
    ("array", ["age", "sex", "bmi"], "has 3 column(s) (age, sex, bmi) but the model takes 10 features"),
    ("frame", ["age", "sex", "bmi"], "--training_data has no column 'bp', 's1'"),
])
def test_training_columns_the_model_does_not_take_register_nothing(tmp_path, fitted_on, columns, message):
    """The check ``online register_v2 --training_data`` needs (cli/online.py passes the file's columns)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from airflow_provider_somlier.errors import InvalidArgumentError
    from airflow_provider_somlier.lifecycle.register_v2 import register_v2

    features, target = load_diabetes(return_X_y=True, as_frame=fitted_on == "frame")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Ridge().fit(features, target)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(InvalidArgumentError, match="nothing was registered") as refused:
        register_v2("sklearn", str(tmp_path / "model.pkl"), "narrow-outside", uri, training_columns=columns)
    assert message in str(refused.value)
    assert MlflowClient(tracking_uri=uri).search_registered_models() == []


@pytest.mark.parametrize("name", ["bad/name", "it's", ""])
def test_a_bad_model_name_is_refused_as_typed(weights, tmp_path, name):
    code, _, err = register("sklearn", str(weights / "ridge.pkl"), name, uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert code == 2 and f"MODEL_NAME {name!r} is invalid" in err, err
