"""The estimator is called directly only where it answers exactly what the pyfunc would."""

from __future__ import annotations

import re

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge

from airflow_provider_somlier.direct_sklearn import LinearPredictor, direct_estimator, direct_predictor
from airflow_provider_somlier.errors import InfiniteFeatureError, NullFeatureError

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


def test_a_plain_linear_model_is_predicted_on_the_checked_matrix_with_the_same_answers(tmp_path, diabetes):
    import pyarrow as pa

    from airflow_provider_somlier.features import FeaturePlan, model_matrix

    frame, target = diabetes
    model = saved(tmp_path, Ridge().fit(frame, target), frame, "ridge")
    predictor = direct_predictor(model, list(frame.columns))
    assert isinstance(predictor, LinearPredictor) and predictor.takes_matrix
    plan = FeaturePlan(features=tuple(frame.columns), passthrough=(), feature_types=dict.fromkeys(frame.columns, "double"))
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    np.testing.assert_allclose(predictor.predict(model_matrix(batch, plan, target="day")), model.predict(frame),
                               rtol=1e-12)
    # NaN sent on to the model (null_features='pass'): the estimator, whose own check refuses them
    assert isinstance(direct_predictor(model, list(frame.columns), missing_allowed=True), Ridge)


def test_other_eligible_estimators_are_predicted_on_a_dataframe(tmp_path, diabetes):
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame, target = diabetes
    model = saved(tmp_path, HistGradientBoostingRegressor(max_iter=5).fit(frame, target), frame, "hgb",
                  skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
    assert isinstance(direct_predictor(model, list(frame.columns)), HistGradientBoostingRegressor)
    assert direct_predictor(model, list(reversed(frame.columns))) is None


@pytest.mark.parametrize(
    "values, error, fragment",
    [
        ([1.0, None, 2.0], NullFeatureError, "1 NULL value(s)"),
        ([1.0, float("nan"), float("nan")], NullFeatureError, "2 NaN value(s)"),
        ([1.0, float("inf"), 2.0], InfiniteFeatureError, "1 infinite value(s)"),
        ([float("-inf"), float("inf"), 2.0], InfiniteFeatureError, "2 infinite value(s)"),  # their sum is NaN
    ],
)
def test_the_matrix_refuses_what_the_estimator_would_by_column_name(values, error, fragment):
    import pyarrow as pa

    from airflow_provider_somlier.features import FeaturePlan, model_matrix

    plan = FeaturePlan(features=("a", "b"), passthrough=(), feature_types={"a": "double", "b": "double"})
    batch = pa.RecordBatch.from_pydict({"a": [0.5, 1.5, 2.5], "b": values})
    with pytest.raises(error, match=rf"feature 'b' has {re.escape(fragment)} on day 1"):
        model_matrix(batch, plan, target="day 1")


def test_finite_values_whose_sum_overflows_are_not_refused():
    import pyarrow as pa

    from airflow_provider_somlier.features import FeaturePlan, model_matrix

    plan = FeaturePlan(features=("a",), passthrough=(), feature_types={"a": "double"})
    matrix = model_matrix(pa.RecordBatch.from_pydict({"a": [1e308, 1e308, -5.0]}), plan, target="day 1")
    assert matrix.shape == (3, 1) and np.isfinite(matrix).all()
