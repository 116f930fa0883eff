"""The day profile: exact counts and bins, mean and std within 1e-9, merge of parts == the whole."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_somlier.errors import ProfileMismatchError
from airflow_provider_somlier.quality.profile import (
    MAX_TRACKED_CATEGORIES,
    ColumnProfile,
    DayProfile,
    bin_lower_bound,
    merge_all,
    profile_table,
)

ROLES = {"amount": "feature", "region": "feature", "flag": "feature", "count": "feature", "prediction": "prediction"}


def _table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(10, 1, rows)
    prediction = rng.normal(100, 15, rows)
    prediction[rng.random(rows) < 0.01] = np.nan
    region = rng.choice(["seoul", "busan", "incheon", "daegu"], rows, p=[0.4, 0.3, 0.2, 0.1])
    mask = rng.random(rows) < 0.05
    return pa.table({
        "amount": pa.array(amount, mask=mask),
        "region": pa.array(region, mask=rng.random(rows) < 0.02),
        "flag": pa.array(rng.random(rows) < 0.3),
        "count": pa.array(rng.integers(-5, 50, rows)),
        "prediction": pa.array(prediction),
    })


def _assert_same(merged: DayProfile, whole: DayProfile) -> None:
    assert merged.rows == whole.rows
    for name, column in whole.columns.items():
        other = merged.columns[name]
        for attribute in ("rows", "nulls", "nans", "count", "min", "max", "other"):
            assert getattr(other, attribute) == getattr(column, attribute), (name, attribute)
        assert other.histogram() == column.histogram(), name
        assert other.categories == column.categories, name
        if column.count and column.kind == "numeric":
            assert other.mean == pytest.approx(column.mean, rel=1e-9, abs=1e-12)
            assert other.std == pytest.approx(column.std, rel=1e-9)


def test_merge_of_parts_equals_the_whole():
    table = _table(30_000, 1)
    whole = profile_table(table, ROLES)
    parts = [profile_table(table.slice(start, 7_000), ROLES) for start in range(0, 30_000, 7_000)]
    _assert_same(merge_all(parts), whole)
    _assert_same(merge_all(reversed(parts)), whole)


def test_batches_fed_one_by_one_equal_the_whole():
    table = _table(10_000, 2)
    whole = profile_table(table, ROLES, batch_rows=10_000)
    streamed = profile_table(table, ROLES, batch_rows=333)
    _assert_same(streamed, whole)


def test_figures_match_numpy():
    table = _table(20_000, 3)
    profile = profile_table(table, ROLES)
    amount = profile.columns["amount"]
    values = table.column("amount").drop_null().to_numpy()
    assert amount.nulls == table.column("amount").null_count
    assert amount.count == len(values)
    assert (amount.min, amount.max) == (values.min(), values.max())
    assert amount.mean == pytest.approx(values.mean(), rel=1e-12)
    assert amount.std == pytest.approx(values.std(), rel=1e-9)
    assert sum(amount.histogram().values()) == len(values)
    prediction = profile.columns["prediction"]
    assert prediction.nans == int(np.isnan(table.column("prediction").to_numpy()).sum()) > 0
    assert prediction.null_fraction == pytest.approx(prediction.nans / 20_000)
    assert math.isfinite(prediction.mean)
    region = profile.columns["region"]
    assert sum(region.categories.values()) + region.nulls == 20_000
    assert set(profile.columns["flag"].categories) == {"true", "false"}
    assert profile.columns["count"].min == -5


def test_a_value_lies_in_its_bin():
    for value in (0.001, 1.0, 3.7, 1000.0, -2.5, 123456.789):
        profile = profile_table(pa.table({"x": [value]}), {"x": "feature"})
        (code,) = profile.columns["x"].histogram()
        edge = bin_lower_bound(code)
        assert abs(edge) <= abs(value) < abs(edge) * 1.0625 + 1e-300


def test_round_trip_through_json_keeps_everything():
    import json

    profile = profile_table(_table(5_000, 4), ROLES)
    again = DayProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    _assert_same(again, profile)


def test_categories_beyond_the_tracked_ones_go_to_other():
    values = [f"v{i}" for i in range(MAX_TRACKED_CATEGORIES + 10)]
    column = profile_table(pa.table({"s": values}), {"s": "feature"}).columns["s"]
    assert len(column.categories) == MAX_TRACKED_CATEGORIES
    assert column.other == 10
    stored = column.to_dict(max_categories=5)
    assert len(stored["categories"]) == 5 and stored["other"] == len(values) - 5


def test_profiles_of_other_columns_do_not_merge():
    one = profile_table(pa.table({"a": [1.0]}), {"a": "feature"})
    two = profile_table(pa.table({"b": [1.0]}), {"b": "feature"})
    with pytest.raises(ProfileMismatchError, match="'a'.*'b'"):
        one.merge(two)
    with pytest.raises(ProfileMismatchError, match="'a'"):
        ColumnProfile("a", "feature", "numeric").merge(ColumnProfile("a", "feature", "categorical"))
