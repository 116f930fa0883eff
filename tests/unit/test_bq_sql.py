"""Literals for the replace script: typed, escaped, and refused when they cannot be written."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_somlier.bq_sql import literal, string_literal
from airflow_provider_somlier.errors import InvalidArgumentError


@pytest.mark.parametrize(
    "value, expected",
    [
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\\\slash'"),
        ("x'; DROP TABLE t; --", "'x\\'; DROP TABLE t; --'"),
        ("two\nlines\tand\r", "'two\\nlines\\tand\\r'"),
        ("한국어 🎉", "'한국어 🎉'"),
    ],
)
def test_strings_are_escaped_by_bigquery_rules(value, expected):
    assert string_literal(value) == expected


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f"])
def test_other_control_characters_are_refused_by_name(char):
    with pytest.raises(InvalidArgumentError, match=r"airflow_run_id 'a\\x[0-9a-f]{2}b' holds the control character"):
        string_literal(f"a{char}b", field="airflow_run_id")


def test_typed_literals():
    kst = dt.timezone(dt.timedelta(hours=9))
    assert literal(3, "INTEGER") == "3"
    assert literal(dt.date(2026, 11, 20), "DATE") == "DATE '2026-11-20'"
    assert literal(dt.datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=kst), "TIMESTAMP") == (
        "TIMESTAMP '2026-11-21 00:00:00.123456+00:00'"
    )
    assert literal(None, "STRING") == "CAST(NULL AS STRING)"


def test_floats_are_written_to_round_trip_and_non_finite_ones_as_casts():
    assert literal(0.1, "FLOAT64") == "0.1" and float(literal(1 / 3, "FLOAT64")) == 1 / 3
    assert literal(7, "FLOAT64") == "7.0"
    assert literal(float("nan"), "FLOAT64") == "CAST('nan' AS FLOAT64)"
    assert literal(float("-inf"), "FLOAT64") == "CAST('-inf' AS FLOAT64)"


@pytest.mark.parametrize(
    "value, bq_type",
    [(True, "INT64"), ("3", "INT64"), (dt.datetime(2026, 11, 20), "DATE"), (dt.datetime(2026, 11, 20), "TIMESTAMP"),
     (True, "FLOAT64"), ("1.5", "FLOAT64"), (1.5, "NUMERIC"), (5, "STRING")],
)
def test_values_of_the_wrong_type_are_refused(value, bq_type):
    with pytest.raises(InvalidArgumentError, match="model_version"):
        literal(value, bq_type, field="model_version")
