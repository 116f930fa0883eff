"""The linear-model shortcut answers exactly what the estimator's own predict answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge, RidgeClassifier

from airflow_provider_somlier.direct_sklearn import linear_shortcut
from online_server.models import BadInputError
from online_server.models.sklearn import SklearnPredictor


def fitted(kind, **params):
    if kind in (LogisticRegression, RidgeClassifier):
        features, target = load_iris(return_X_y=True)
        if params.pop("binary", False):
            target = np.where(target == 0, "setosa", "other")
    else:
        features, target = load_diabetes(return_X_y=True)
        if params.pop("two_targets", False):
            target = np.column_stack([target, -target])
    return kind(**params).fit(features, target), features


@pytest.mark.parametrize(
    "kind, params",
    [
        (Ridge, {}), (Ridge, {"two_targets": True}), (LinearRegression, {}), (LinearRegression, {"fit_intercept": False}),
        (LogisticRegression, {"max_iter": 500}), (LogisticRegression, {"max_iter": 500, "binary": True}),
    ],
)
def test_the_shortcut_matches_predict_bit_for_bit(kind, params):
    estimator, features = fitted(kind, **params)
    shortcut = linear_shortcut(estimator)
    assert shortcut is not None
    rng = np.random.default_rng(7)
    for rows in (features[:1], features, rng.normal(scale=3, size=(257, features.shape[1]))):
        assert np.array_equal(shortcut(rows), estimator.predict(rows))
        assert shortcut(rows).dtype == estimator.predict(rows).dtype


@pytest.mark.parametrize("kind", [Lasso, RidgeClassifier])
def test_other_estimators_keep_their_own_predict(kind):
    estimator, _ = fitted(kind)
    assert linear_shortcut(estimator) is None


def test_a_subclass_keeps_its_own_predict():
    class Clipped(Ridge):
        def predict(self, X):
            return np.clip(super().predict(X), 0, 100)

    estimator, _ = fitted(Clipped)
    assert linear_shortcut(estimator) is None


@pytest.mark.parametrize(
    "data, fragment",
    [([1.0, 2.0], "10 values"), ([[float("nan")] * 10], "NaN or infinity"), ([[1e400] * 10], "NaN or infinity"),
     ([["a"] * 10], "must be numbers"), ([], "non-empty")],
)
def test_the_shortcut_refuses_what_predict_would_refuse(data, fragment):
    predictor = SklearnPredictor(fitted(Ridge)[0], "1")
    with pytest.raises(BadInputError, match=fragment):
        predictor.predict(data)


def test_a_model_fitted_on_named_columns_takes_lists_and_objects_alike():
    frame, target = load_diabetes(return_X_y=True, as_frame=True)
    estimator = Ridge().fit(frame, target)
    predictor = SklearnPredictor(estimator, "1")
    expected = estimator.predict(frame.iloc[:2]).tolist()
    # A DataFrame is Fortran-ordered, the request's rows C-ordered: the BLAS path may differ.
    assert predictor.predict(frame.iloc[:2].values.tolist()) == pytest.approx(expected, rel=1e-12)
    assert predictor.predict(frame.iloc[:2].to_dict("records")) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(BadInputError, match=r"missing feature\(s\) \['s6'\]"):
        predictor.predict(frame.iloc[:1].drop(columns="s6").to_dict("records"))


@pytest.mark.parametrize("value", [None, float("nan"), "0.03", True, 10**400])
def test_an_object_row_must_hold_finite_numbers(value):
    frame, target = load_diabetes(return_X_y=True, as_frame=True)
    predictor = SklearnPredictor(Ridge().fit(frame, target), "1")
    row = frame.iloc[0].to_dict() | {"bmi": value}
    with pytest.raises(BadInputError, match="feature 'bmi'"):
        predictor.predict(row)
    with pytest.raises(BadInputError, match="feature 'bmi'"):
        predictor.predict([frame.iloc[1].to_dict(), row])


def test_a_pickle_without_predict_is_not_a_model():
    from online_server.models import ModelLoadError

    with pytest.raises(ModelLoadError, match="holds a dict, not a model"):
        SklearnPredictor({"coef": [1.0]}, "1")
