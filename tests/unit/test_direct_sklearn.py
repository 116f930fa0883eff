"""The estimator is called directly only where it answers exactly what the pyfunc would."""

from __future__ import annotations

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge

from airflow_provider_somlier.direct_sklearn import direct_estimator

PIP_REQUIREMENTS = [f"scikit-learn=={sklearn.__version__}"]  # stated: inferring them starts a process


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True, as_frame=True)


def saved(tmp_path, estimator, frame, name, **kwargs):
    output = estimator.predict_proba(frame) if kwargs.get("pyfunc_predict_fn") == "predict_proba" else estimator.predict(frame)
    mlflow.sklearn.save_model(estimator, tmp_path / name, signature=infer_signature(frame, output),
                              pip_requirements=PIP_REQUIREMENTS, **kwargs)
    return mlflow.pyfunc.load_model(str(tmp_path / name))


def test_a_double_signature_in_fitted_order_is_predicted_by_the_estimator_with_the_same_answers(tmp_path, diabetes):
    frame, target = diabetes
    model = saved(tmp_path, Ridge().fit(frame, target), frame, "ridge")
    estimator = direct_estimator(model, list(frame.columns))
    assert isinstance(estimator, Ridge)
    assert direct_estimator(model) is estimator
    rows = frame.iloc[:50]
    # The same estimator on the same frame; the pyfunc copies it first: equal within rounding.
    np.testing.assert_allclose(estimator.predict(rows), model.predict(rows), rtol=1e-12)


def test_every_other_model_keeps_the_pyfunc(tmp_path, diabetes):
    frame, target = diabetes
    ridge = saved(tmp_path, Ridge().fit(frame, target), frame, "ridge")
    # columns in another order: the pyfunc reorders them, the estimator would refuse them
    assert direct_estimator(ridge, list(reversed(frame.columns))) is None
    # an integer column: MLflow's enforcement converts and checks it
    with_long = frame.assign(age=(frame["age"] * 100).round().astype("int64"))
    assert direct_estimator(saved(tmp_path, Ridge().fit(with_long, target), with_long, "long")) is None
    # logged to answer probabilities: the estimator's predict would answer class labels
    high = (target > target.median()).astype(int)
    proba = saved(tmp_path, LogisticRegression(max_iter=1000).fit(frame, high), frame, "proba",
                  pyfunc_predict_fn="predict_proba")
    assert direct_estimator(proba) is None
    # fitted on a bare array: no feature names to check the columns against
    bare = Ridge().fit(frame.to_numpy(), target)
    mlflow.sklearn.save_model(bare, tmp_path / "bare", signature=infer_signature(frame, bare.predict(frame.to_numpy())),
                              pip_requirements=PIP_REQUIREMENTS)
    assert direct_estimator(mlflow.pyfunc.load_model(str(tmp_path / "bare"))) is None
    # not a scikit-learn flavor
    assert direct_estimator(object()) is None
