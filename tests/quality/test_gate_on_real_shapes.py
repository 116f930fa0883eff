"""The gate on data shaped like users' own: narrow features, many categories, weekly seasonality, small days.

Each normal case is a new random draw that must pass every default check; each bad case must be
caught by the check that names it. Baselines of earlier days go through the profile table's rows
(``profile_rows`` → ``days_from_rows``), so they keep only each day's top categories, as stored.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_somlier.errors import QualitySettingError
from airflow_provider_somlier.quality.drift import Baseline, compare
from airflow_provider_somlier.quality.gate import evaluate, parse_settings
from airflow_provider_somlier.quality.profile import profile_table
from airflow_provider_somlier.quality.store import days_from_rows, profile_rows

MONDAY = dt.date(2026, 11, 2)
LINEAGE = {"model_name": "m", "model_version": 1, "airflow_run_id": "r",
           "predicted_at": dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)}
STORES = [f"store-{i:02d}" for i in range(60)]


def frame(seed: int, rows: int, **change) -> pa.Table:
    """A day: a latitude (every value in one 6 % bin), a year, 60 even stores, an amount; the
    model's answer does not depend on the latitude, so only the latitude's own check can see it."""
    rng = np.random.default_rng(seed)
    columns = {
        "lat": rng.normal(37.55, 0.05, rows),
        "year": rng.integers(2000, 2026, rows).astype(np.float64),
        "store": rng.choice(STORES, rows).astype(object),
        "amount": rng.lognormal(10, 0.5, rows),
    }
    for name, value in change.items():
        columns[name] = value(columns[name]) if callable(value) else value
    columns["prediction"] = columns["amount"] / 10_000
    return pa.table({k: pa.array(v) for k, v in columns.items()})


ROLES = {"lat": "feature", "year": "feature", "store": "feature", "amount": "feature", "prediction": "prediction"}


def stored(day: dt.date, table: pa.Table):
    """The day's profile as a later run reads it back from the profile table."""
    return days_from_rows(profile_rows(day, profile_table(table, ROLES), None, LINEAGE))[day]


def baseline_of(days: dict[dt.date, pa.Table]) -> Baseline:
    return Baseline.of_days({d: stored(d, t) for d, t in days.items()}, f"previous_days:{len(days)}")


def judge(table: pa.Table, baseline: Baseline, day: dt.date, **checks):
    profile = profile_table(table, ROLES)
    return evaluate(profile, compare(profile, baseline, day), parse_settings(checks or None))


def failed(verdict) -> set[tuple[str, str | None]]:
    return {(f.check, f.column) for f in verdict.failures}


@pytest.fixture(scope="module")
def week() -> tuple[Baseline, dt.date]:
    """Seven days of 3,000 rows; the day judged is the Monday after."""
    return baseline_of({MONDAY + dt.timedelta(days=i): frame(i, 3000) for i in range(7)}), MONDAY + dt.timedelta(days=7)


def test_a_normal_day_passes_with_narrow_features_and_sixty_stores(week):
    baseline, day = week
    for seed in (100, 101, 102):
        verdict = judge(frame(seed, 3000), baseline, day)
        assert verdict.outcome == "pass", verdict.message()
        assert not verdict.skipped


@pytest.mark.parametrize("change", [
    pytest.param(lambda lat: lat * 1000, id="x1000"),
    pytest.param(lambda lat: lat / 1000, id="div1000"),
    pytest.param(lambda lat: np.zeros_like(lat), id="all-zero"),
    pytest.param(lambda lat: -lat, id="negated"),
    pytest.param(lambda lat: lat + 1.0, id="shifted-20-sd"),
    pytest.param(lambda lat: np.full_like(lat, 127.0), id="longitude-instead"),
])
def test_a_feature_narrower_than_one_bin_is_still_judged(week, change):
    """All the baseline's latitudes share one fine bin: values far outside its range are PSI groups of
    their own, and the mean moved by more than 3 of its standard deviations fails on its own."""
    baseline, day = week
    verdict = judge(frame(7, 3000, lat=change), baseline, day)
    assert ("max_mean_shift", "lat") in failed(verdict) and {c for _, c in failed(verdict)} == {"lat"}, verdict.message()
    without_shift = judge(frame(7, 3000, lat=change), baseline, day, max_mean_shift=None)
    assert failed(without_shift) <= {("max_psi", "lat")}


def test_far_outside_the_range_is_a_psi_group_of_its_own(week):
    baseline, day = week
    verdict = judge(frame(7, 3000, lat=lambda lat: lat * 1000), baseline, day, max_mean_shift=None)
    assert failed(verdict) == {("max_psi", "lat")}, verdict.message()


def test_stored_top_categories_do_not_make_a_normal_day_drift(week):
    """Each stored day keeps its top 50 of 60 stores; summing them undercounted the rest (PSI ~1.0)."""
    baseline, day = week
    drift = compare(profile_table(frame(200, 3000), ROLES), baseline, day).columns["store"]
    assert drift.psi < 0.1
    concentrated = frame(201, 3000, store=lambda s: np.array(STORES[:5], dtype=object)[np.arange(len(s)) % 5])
    assert failed(judge(concentrated, baseline, day)) == {("max_psi", "store")}


def test_many_rare_categories_on_a_small_day_are_not_noise_alarms():
    """200 categories, 600 rows a day: a category expected fewer than 10 times shares one bucket."""
    categories = [f"c{i:03d}" for i in range(200)]

    def small(seed: int) -> pa.Table:
        rng = np.random.default_rng(seed)
        return pa.table({"cat": rng.choice(categories, 600).astype(object), "prediction": rng.normal(0, 1, 600)})

    roles = {"cat": "feature", "prediction": "prediction"}
    days = {MONDAY + dt.timedelta(days=i): days_from_rows(profile_rows(
        MONDAY + dt.timedelta(days=i), profile_table(small(i), roles), None, LINEAGE))[MONDAY + dt.timedelta(days=i)]
        for i in range(7)}
    baseline = Baseline.of_days(days, "previous_days:7")
    for seed in (50, 51, 52):
        profile = profile_table(small(seed), roles)
        verdict = evaluate(profile, compare(profile, baseline, MONDAY + dt.timedelta(days=7)), parse_settings())
        assert verdict.outcome == "pass", verdict.message()


def test_quiet_weekends_pass_and_a_day_out_of_its_range_fails():
    """Weekdays 1,000 rows, weekends 500: a baseline of one week judges a day by its days' range."""
    days = {MONDAY + dt.timedelta(days=i): frame(i, 500 if i % 7 >= 5 else 1000) for i in range(7)}
    baseline = baseline_of(days)
    saturday, monday = MONDAY + dt.timedelta(days=12), MONDAY + dt.timedelta(days=7)
    assert judge(frame(30, 500), baseline, saturday).outcome == "pass"
    assert judge(frame(31, 1000), baseline, monday).outcome == "pass"
    for rows in (30, 2000):  # 3 % of a day; every row of a weekday twice
        verdict = judge(frame(32, rows), baseline, monday)
        assert failed(verdict) == {("row_count_factor", None)}, verdict.message()
    assert "the busiest of the baseline's days (500 to 1,000 rows)" in judge(frame(33, 2000), baseline, monday).message()


def test_with_two_weeks_a_day_is_compared_with_its_own_weekdays():
    """previous_days:14 holds two of each weekday: a weekend with every row twice is caught."""
    days = {MONDAY + dt.timedelta(days=i): frame(i, 500 if i % 7 >= 5 else 1000) for i in range(14)}
    baseline = baseline_of(days)
    saturday = MONDAY + dt.timedelta(days=19)
    assert judge(frame(40, 520), baseline, saturday).outcome == "pass"
    doubled = judge(frame(41, 1000), baseline, saturday)
    assert failed(doubled) == {("row_count_factor", None)}, doubled.message()
    assert "1,000 rows = 2x the median of the baseline's 2 Saturdays" in doubled.message()


def test_small_days_are_judged_on_psi_when_the_baseline_makes_it_reliable():
    """300 rows a day over a week: PSI's noise is about 0.12, well under 0.25 -- a x1000 day is caught."""
    days = {MONDAY + dt.timedelta(days=i): frame(i, 300) for i in range(7)}
    baseline, day = baseline_of(days), MONDAY + dt.timedelta(days=7)
    for seed in (60, 61, 62):
        verdict = judge(frame(seed, 300), baseline, day)
        assert verdict.outcome == "pass" and "max_psi" not in verdict.skipped, verdict.message()
    bad = judge(frame(63, 300, amount=lambda a: a * 1000), baseline, day, max_psi_per_column={"prediction": None})
    assert ("max_psi", "amount") in failed(bad)


def test_a_feature_that_is_often_null_gets_a_limit_of_its_own(week):
    baseline, day = week

    def with_nulls(lat: np.ndarray, share: float) -> pa.Array:
        return pa.array(lat, mask=np.random.default_rng(9).random(len(lat)) < share)

    often = frame(70, 3000, lat=lambda lat: with_nulls(lat, 0.3))
    assert failed(judge(often, baseline, day)) >= {("max_null_fraction", "lat")}
    tuned = {"max_null_fraction_per_column": {"lat": 0.35}, "max_psi_per_column": {"lat": None}}
    assert judge(often, baseline, day, **tuned).outcome == "pass"
    mostly = frame(71, 3000, lat=lambda lat: with_nulls(lat, 0.5))
    assert failed(judge(mostly, baseline, day, **tuned)) == {("max_null_fraction", "lat")}


@pytest.mark.parametrize(("checks", "named"), [
    ({"max_psi": 10**400}, "max_psi must be a number from 0 to inf, got an integer of 401 digits"),
    ({"max_psi_per_column": []}, "max_psi_per_column must map column names to limits"),
    ({"max_psi_per_column": 0}, "max_psi_per_column must map column names to limits"),
    ({"max_null_fraction_per_column": {"lat": 2}}, r"max_null_fraction_per_column\['lat'\] must be a number from 0 to 1"),
])
def test_bad_thresholds_are_refused_by_name(checks, named):
    with pytest.raises(QualitySettingError, match=named):
        parse_settings(checks)


@pytest.mark.parametrize("baseline", ["previous_days:" + "9" * 5000, "previous_days:٣"])
def test_bad_baselines_are_refused_by_name(baseline):
    with pytest.raises(QualitySettingError, match="baseline must be 'previous_days:N'"):
        parse_settings(None, baseline)


def test_a_limit_on_a_prediction_column_the_model_does_not_answer_is_refused_before_writing(week):
    baseline, day = week
    with pytest.raises(QualitySettingError, match="'prediction_typo'.*this run does not profile"):
        judge(frame(80, 3000), baseline, day, max_psi_per_column={"prediction_typo": 0.1})


def test_a_day_of_a_few_rows_is_not_judged_on_its_mean(week):
    baseline, day = week
    verdict = judge(frame(90, 1, lat=lambda lat: lat + 0.2), baseline, day)  # one row, 4 sd off: could be normal
    assert "max_mean_shift" not in {f.check for f in verdict.failures}
    assert "too few for a mean to tell a shift from sampling noise on 'lat'" in verdict.skipped["max_mean_shift"]
