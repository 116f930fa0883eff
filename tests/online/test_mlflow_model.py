"""A registry model served online answers what its pyfunc answers, minus MLflow's per-call cost."""

from __future__ import annotations

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from online_server.models import BadInputError
from online_server.models.mlflow import MlflowPredictor

# Stated, not inferred: inference starts a process that imports the model, seconds per save.
PIP_REQUIREMENTS = [f"scikit-learn=={sklearn.__version__}"]


def pyfunc(tmp_path, frame, target, name="model"):
    estimator = Ridge().fit(frame, target)
    mlflow.sklearn.save_model(estimator, tmp_path / name, signature=infer_signature(frame, estimator.predict(frame)),
                              pip_requirements=PIP_REQUIREMENTS)
    return mlflow.pyfunc.load_model(str(tmp_path / name))


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True, as_frame=True)


def test_a_double_signature_goes_straight_to_the_estimator_with_the_same_answers(tmp_path, diabetes):
    frame, target = diabetes
    model = pyfunc(tmp_path, frame, target)
    predictor = MlflowPredictor(model, "diabetes/1", list(frame.columns))
    assert predictor.direct is not None
    rows = frame.iloc[:5]
    expected = model.predict(rows).tolist()
    # Other shapes and memory orders may take other BLAS kernels: equal within rounding.
    assert predictor.predict(rows.values.tolist()) == pytest.approx(expected, rel=1e-12)
    assert predictor.predict(rows.to_dict("records")) == pytest.approx(expected, rel=1e-12)
    assert predictor.predict(rows.iloc[0].tolist()) == pytest.approx(expected[:1], rel=1e-12)


@pytest.mark.parametrize(
    "data, fragment",
    [([1.0, 2.0], "10 values"), ([{"age": 1.0}], "missing feature(s)"), ([[float("inf")] * 10], "NaN or infinity"),
     (["a"] * 10, "must be numbers")],
)
def test_the_direct_path_refuses_bad_input_by_name(tmp_path, diabetes, data, fragment):
    frame, target = diabetes
    predictor = MlflowPredictor(pyfunc(tmp_path, frame, target), "diabetes/1", list(frame.columns))
    with pytest.raises(BadInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        predictor.predict(data)


def test_other_signatures_keep_mlflow_enforcement(tmp_path, diabetes):
    frame, target = diabetes
    with_long = frame.assign(age=(frame["age"] * 100).round().astype("int64"))
    model = pyfunc(tmp_path, with_long, target)
    predictor = MlflowPredictor(model, "diabetes/2", list(with_long.columns))
    assert predictor.direct is None
    row = with_long.iloc[:1]
    assert predictor.predict(row.to_dict("records")) == pytest.approx(model.predict(row).tolist())
    assert np.isfinite(predictor.predict(row.to_dict("records"))).all()


def test_the_server_serves_the_registry_version_the_batch_operator_resolves(tmp_path, registry, diabetes):
    """MODEL_TYPE=mlflow: the alias is resolved by MLflowHook; moving it and calling /model_download switches."""
    from mlflow import MlflowClient

    from online_server.app import create_app
    from online_server.settings import Settings

    frame, _ = diabetes
    settings = Settings(model_name="diabetes", model_type="mlflow", model_ref="diabetes-ridge@champion",
                        work_dir=str(tmp_path / "work"))
    client = create_app(settings).test_client()
    first = client.post("/result", json={"test": frame.iloc[0].tolist()})
    assert first.status_code == 200 and first.headers["X-Model-Version"] == "diabetes-ridge/1"
    by_name = client.post("/result", json={"test": frame.iloc[0].to_dict()})
    assert by_name.get_json() == first.get_json()

    registry_client = MlflowClient(tracking_uri=registry["uri"])
    registry_client.set_registered_model_alias("diabetes-ridge", "champion", "2")
    try:
        assert client.post("/model_download").get_json()["version"] == "diabetes-ridge/2"
        second = client.post("/result", json={"test": frame.iloc[0].tolist()})
        assert second.headers["X-Model-Version"] == "diabetes-ridge/2"
        assert second.get_json()["result"] != first.get_json()["result"]
    finally:
        registry_client.set_registered_model_alias("diabetes-ridge", "champion", "1")


def test_an_unknown_alias_is_a_503_naming_it_and_a_rejected_switch(tmp_path, registry, diabetes):
    from online_server.app import create_app
    from online_server.settings import Settings

    settings = Settings(model_name="diabetes", model_type="mlflow", model_ref="diabetes-ridge@nope",
                        work_dir=str(tmp_path / "work"))
    client = create_app(settings).test_client()
    answer = client.post("/result", json={"test": diabetes[0].iloc[0].tolist()})
    assert answer.status_code == 503 and "nope" in answer.get_json()["message"]
    switch = client.post("/model_download")
    assert switch.status_code == 422 and switch.get_json()["error_code"] == "MODEL_REJECTED"


def test_a_failed_load_is_not_retried_on_every_request(tmp_path, registry, monkeypatch):
    """An unreachable or wrong registry answers 503 at once for a while instead of per-request lookups."""
    from online_server import state as serving_state
    from online_server.app import create_app
    from online_server.settings import Settings

    attempts = []
    real_load = serving_state.load_predictor
    monkeypatch.setattr(serving_state, "load_predictor", lambda *a: attempts.append(1) or real_load(*a))
    settings = Settings(model_name="diabetes", model_type="mlflow", model_ref="diabetes-ridge@nope",
                        work_dir=str(tmp_path / "work"))
    client = create_app(settings).test_client()
    answers = [client.post("/result", json={"test": [0.0] * 10}) for _ in range(5)]
    assert {a.status_code for a in answers} == {503} and len(attempts) == 1
    assert all("nope" in a.get_json()["message"] for a in answers)
    monkeypatch.setattr(serving_state, "RETRY_LOAD_AFTER_SECONDS", 0.0)  # the window has passed
    client.post("/result", json={"test": [0.0] * 10})
    assert len(attempts) > 1


def test_a_string_column_in_the_signature_takes_strings_and_its_numbers_stay_strict(tmp_path, diabetes):
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame, target = diabetes
    with_city = frame.assign(city=np.where(frame["sex"] > 0, "Seoul", "Busan"))
    estimator = make_pipeline(make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"), Ridge())
    estimator.fit(with_city, target)
    mlflow.sklearn.save_model(estimator, tmp_path / "model", signature=infer_signature(with_city, target),
                              pip_requirements=PIP_REQUIREMENTS)
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    predictor = MlflowPredictor(model, "diabetes/3", list(with_city.columns))
    row = with_city.iloc[0].to_dict()
    assert predictor.predict(row) == pytest.approx(model.predict(with_city.iloc[:1]).tolist())
    with pytest.raises(BadInputError, match="feature 'bmi'"):
        predictor.predict(row | {"bmi": "0.03"})


def test_a_model_logged_to_answer_probabilities_answers_probabilities(tmp_path, diabetes):
    from sklearn.linear_model import LogisticRegression

    frame, target = diabetes
    high = (target > target.median()).astype(int)
    estimator = LogisticRegression(max_iter=1000).fit(frame, high)
    mlflow.sklearn.save_model(estimator, tmp_path / "proba", pyfunc_predict_fn="predict_proba",
                              signature=infer_signature(frame, estimator.predict_proba(frame)),
                              pip_requirements=PIP_REQUIREMENTS)
    model = mlflow.pyfunc.load_model(str(tmp_path / "proba"))
    predictor = MlflowPredictor(model, "diabetes-high/1", list(frame.columns))
    assert predictor.direct is None  # the estimator's predict would answer class labels
    rows = frame.iloc[:3]
    answers = predictor.predict(rows.to_dict("records"))
    assert np.asarray(answers).shape == (3, 2)
    assert np.asarray(answers) == pytest.approx(estimator.predict_proba(rows), rel=1e-9)
