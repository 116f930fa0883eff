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
