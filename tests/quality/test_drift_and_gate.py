"""Drift and the gate's defaults: each bad day is caught by the check that names it; a normal day passes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_somlier.errors import QualitySettingError
from airflow_provider_somlier.quality.drift import Baseline, compare, psi
from airflow_provider_somlier.quality.gate import evaluate, parse_settings
from airflow_provider_somlier.quality.profile import profile_table

ROLES = {"x": "feature", "amount": "feature", "region": "feature", "prediction": "prediction"}
ROWS = 2_000
MONDAY = dt.date(2026, 11, 16)


def week(profiles) -> dict[dt.date, object]:
    """Profiles as the baseline days before ``MONDAY`` + 7 (one per day, oldest first)."""
    return {MONDAY + dt.timedelta(days=i): p for i, p in enumerate(profiles)}


def day(seed: int, rows: int = ROWS, **change) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, rows)
    amount = rng.lognormal(10, 0.5, rows)
    region = rng.choice(["seoul", "busan", "incheon", "daegu"], rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    columns = {"x": x, "amount": amount, "region": region, "prediction": 2 * x + amount / 10_000}
    for name, value in change.items():
        columns[name] = value(columns[name]) if callable(value) else value
    return pa.table({k: pa.array(v) for k, v in columns.items()})


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    days = [profile_table(day(seed), ROLES) for seed in range(7)]
    return Baseline.of_days(week(days), "previous_days:7")


def verdict(table: pa.Table, baseline: Baseline | None, **checks):
    profile = profile_table(table, ROLES)
    settings = parse_settings(checks or None)
    return evaluate(profile, compare(profile, baseline) if baseline else None, settings)


def failed(v) -> set[tuple[str, str | None]]:
    return {(f.check, f.column) for f in v.failures}


def test_a_normal_day_passes_every_default_check(baseline):
    for seed in (100, 101, 102):
        v = verdict(day(seed, rows=int(ROWS * 1.1)), baseline)
        assert v.outcome == "pass", v.message()
        assert {r.check for r in v.results} == {
            "max_null_fraction", "max_psi", "max_mean_shift", "prediction_range", "row_count_factor"}


def test_a_unit_change_is_caught_by_psi(baseline):
    v = verdict(day(7, amount=lambda a: a * 1000), baseline)
    assert ("max_psi", "amount") in failed(v)


def test_an_unseen_category_is_caught_by_psi_and_named(baseline):
    v = verdict(day(8, region=lambda r: np.where(r == "busan", "Busan", r)), baseline)
    assert failed(v) == {("max_psi", "region")}
    assert "'Busan'" in v.message()


def test_three_percent_volume_and_duplicated_rows_are_caught_by_row_count(baseline):
    assert ("row_count_factor", None) in failed(verdict(day(9, rows=ROWS * 3 // 100), baseline))
    doubled = pa.concat_tables([day(10), day(10)])
    assert failed(verdict(doubled, baseline)) == {("row_count_factor", None)}


def test_nan_predictions_fail_the_prediction_range(baseline):
    v = verdict(day(11, prediction=lambda p: np.where(np.arange(len(p)) % 50 == 0, np.nan, p)), baseline)
    assert ("prediction_range", "prediction") in failed(v)
    assert "NaN" in v.message()


def test_an_all_null_column_fails_the_null_fraction(baseline):
    v = verdict(day(12, amount=[None] * ROWS), baseline)
    assert ("max_null_fraction", "amount") in failed(v)
    assert "1.0 outside 0.1" in v.message()


def test_prediction_range_bounds_and_per_column_psi(baseline):
    v = verdict(day(13), baseline, prediction_range=[-1, 1])
    assert failed(v) == {("prediction_range", "prediction")}
    shifted = day(14, x=lambda x: x + 0.3)  # PSI about 0.1: within the default 0.25
    assert verdict(shifted, baseline).outcome == "pass"
    assert failed(verdict(shifted, baseline, max_psi_per_column={"x": 0.05})) == {("max_psi", "x")}
    unit = day(14, amount=lambda a: a * 1000)
    v = verdict(unit, baseline, max_psi_per_column={"amount": None, "prediction": None},  # None: not judged
                max_mean_shift=None)
    assert v.outcome == "pass", v.message()
    assert "amount" not in {r.column for r in v.results if r.check == "max_psi"}


def test_a_limit_too_tight_for_the_days_size_is_skipped_by_name_not_failed_on_noise(baseline):
    v = verdict(day(14), baseline, max_psi_per_column={"x": 0.001})
    assert v.outcome == "pass" and "too few for PSI to tell drift from sampling noise on 'x'" in v.skipped["max_psi"]


def test_without_a_baseline_drift_checks_are_skipped_and_named():
    v = verdict(day(15), None)
    assert v.outcome == "pass"
    assert set(v.skipped) == {"max_psi", "max_mean_shift", "row_count_factor"}
    assert "no baseline" in v.skipped["max_psi"]


def test_psi_of_identical_histograms_is_zero():
    assert psi({1: 10, 2: 30}, {1: 1, 2: 3}) == pytest.approx(0.0, abs=1e-12)
    assert psi({}, {1: 1}) is None


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"quality_checks": {"max_nul_fraction": 0.1}}, "'max_nul_fraction'"),
        ({"quality_checks": {"max_psi": -0.1}}, "max_psi must be a number from 0.*-0.1"),
        ({"quality_checks": {"max_null_fraction": 1.5}}, "max_null_fraction"),
        ({"quality_checks": {"row_count_factor": 0.5}}, "row_count_factor"),
        ({"quality_checks": {"prediction_range": [3, 1]}}, "low <= high"),
        ({"quality_checks": "{not json"}, "JSON"),
        ({"baseline": "previous_days:0"}, "'previous_days:0'.*from 1 to 366"),
        ({"baseline": "last_week"}, "'last_week'"),
        ({"on_failure": "ignore"}, "'ignore'"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, named):
    with pytest.raises(QualitySettingError, match=named):
        parse_settings(**kwargs)


def test_a_psi_limit_on_a_column_the_run_does_not_profile_is_refused():
    settings = parse_settings({"max_psi_per_column": {"amount": 0.1, "amonut": 0.1, "prediction_1": 0.2}})
    with pytest.raises(QualitySettingError, match="'amonut'"):
        settings.check_columns(["amount", "x"], where="the model")


def test_psi_is_skipped_by_name_on_days_too_small_to_tell_drift_from_noise():
    small = [day(seed, rows=50) for seed in range(1, 8)]
    baseline = Baseline.of_days(week([profile_table(t, ROLES) for t in small]), "previous_days:7")
    judged = verdict(day(99, rows=50), baseline)

    assert judged.outcome == "pass", judged.message()
    assert "the day has 50 row(s): too few for PSI to tell drift from sampling noise on 'x'" in judged.skipped["max_psi"]


