"""Feature columns handed to the model in the signature's types, as pandas and scikit-learn would convert them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from airflow_provider_somlier.errors import FeatureMismatchError
from airflow_provider_somlier.features import FeaturePlan, model_input, model_matrix

TARGET = "target day 2026-11-19"


def _input(column: pa.Array, mlflow_type: str):
    plan = FeaturePlan(features=("x",), passthrough=(), feature_types={"x": mlflow_type})
    return model_input(pa.record_batch([column], names=["x"]), plan, target=TARGET)


def test_integers_beyond_2_53_reach_a_double_input_rounded_as_numpy_rounds_them():
    big = [1_700_000_000_000_000_001, -(2**62) - 1]
    frame = _input(pa.array(big, pa.int64()), "double")
    assert frame["x"].dtype == "float64" and frame["x"].tolist() == [float(v) for v in big]
    plan = FeaturePlan(features=("x",), passthrough=(), feature_types={"x": "double"})
    matrix = model_matrix(pa.record_batch([pa.array(big, pa.int64())], names=["x"]), plan, target=TARGET)
    assert matrix[:, 0].tolist() == [float(v) for v in big]


def test_a_value_an_integer_input_cannot_hold_is_named_with_its_column():
    with pytest.raises(FeatureMismatchError, match=r"feature 'x' on target day 2026-11-19 .* integer input"):
        _input(pa.array([1, 3_000_000_000], pa.int64()), "integer")


def test_a_double_beyond_float32_is_named_instead_of_becoming_infinite():
    with pytest.raises(FeatureMismatchError, match=r"feature 'x' .* 1 value\(s\) beyond float32's range"):
        _input(pa.array([1.0, 1e39, float("inf")], pa.float64()), "float")
    assert _input(pa.array([1.0, float("inf")], pa.float64()), "float")["x"].tolist() == [1.0, float("inf")]


def test_a_timestamp_reaches_a_datetime_input_as_utc_without_a_zone():
    at = dt.datetime(2026, 11, 19, 15, 0, tzinfo=dt.timezone.utc)
    frame = _input(pa.array([at], pa.timestamp("us", tz="UTC")), "datetime")
    assert frame["x"].dt.tz is None and frame["x"].tolist() == [at.replace(tzinfo=None)]


def test_a_signature_column_in_another_letter_case_is_pointed_at():
    from airflow_provider_somlier.errors import ColumnNotFoundError
    from airflow_provider_somlier.features import plan_features

    with pytest.raises(ColumnNotFoundError, match=r"'Age' is 'age' there: names must match in letter case too"):
        plan_features({"age": "FLOAT64", "bmi": "FLOAT64"}, [("Age", "double"), ("bmi", "double")], None, (),
                      source="p.d.features")


def test_a_model_without_column_names_asks_for_feature_columns_saying_what_it_has():
    from airflow_provider_somlier.features import plan_features

    with pytest.raises(FeatureMismatchError, match=r"the model has a tensor \(numpy\) input signature, whose inputs "
                                                   r"have no column names, so feature_columns must be given"):
        plan_features({"age": "FLOAT64"}, None, None, (), source="p.d.features",
                      signature_described="a tensor (numpy) input signature, whose inputs have no column names")


def test_signature_kind_tells_a_tensor_signature_from_none(tmp_path):
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import Ridge

    from airflow_provider_somlier.features import signature_inputs, signature_kind

    X = np.arange(12, dtype="float64").reshape(6, 2)
    mlflow.sklearn.save_model(Ridge().fit(X, X[:, 0]), tmp_path / "tensor", input_example=X[:2])
    mlflow.sklearn.save_model(Ridge().fit(X, X[:, 0]), tmp_path / "none")
    tensor, none = (mlflow.pyfunc.load_model(str(tmp_path / name)) for name in ("tensor", "none"))
    assert signature_inputs(tensor) is None and signature_kind(tensor).startswith("a tensor (numpy) input signature")
    assert signature_kind(none) == "no input signature"
