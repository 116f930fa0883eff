import datetime as dt

import pytest

from airflow_provider_somlier.errors import InvalidWindowError, UnsupportedColumnTypeError
from airflow_provider_somlier.window import day_filter, parse_window, target_date

UTC = dt.timezone.utc


def test_a_run_after_kst_midnight_is_the_next_day_in_kst():
    run = dt.datetime(2026, 11, 20, 15, 30, tzinfo=UTC)  # 2026-11-21 00:30 KST
    assert target_date(run, 0, by_kst=True) == dt.date(2026, 11, 21)
    assert target_date(run, 0, by_kst=False) == dt.date(2026, 11, 20)
    assert target_date(run, 1, by_kst=True) == dt.date(2026, 11, 20)
    assert target_date(run, 7, by_kst=False) == dt.date(2026, 11, 13)


def test_a_run_just_before_kst_midnight_stays_on_the_same_day():
    run = dt.datetime(2026, 11, 20, 14, 59, 59, tzinfo=UTC)  # 23:59:59 KST
    assert target_date(run, 0, by_kst=True) == dt.date(2026, 11, 20)


def test_timestamp_filters_are_the_zones_day_in_utc_bounds():
    kst = day_filter("ts", "TIMESTAMP", dt.date(2026, 11, 21), by_kst=True)
    assert kst.sql == "`ts` >= TIMESTAMP '2026-11-20 15:00:00+00' AND `ts` < TIMESTAMP '2026-11-21 15:00:00+00'"
    utc = day_filter("ts", "TIMESTAMP", dt.date(2026, 11, 21), by_kst=False)
    assert utc.sql == "`ts` >= TIMESTAMP '2026-11-21 00:00:00+00' AND `ts` < TIMESTAMP '2026-11-22 00:00:00+00'"


def test_date_and_datetime_filters_are_wall_clock_days():
    assert day_filter("d", "DATE", dt.date(2026, 11, 21), True).sql == "`d` = DATE '2026-11-21'"
    assert day_filter("d", "DATETIME", dt.date(2026, 11, 21), True).sql == (
        "`d` >= DATETIME '2026-11-21 00:00:00' AND `d` < DATETIME '2026-11-22 00:00:00'"
    )


@pytest.mark.parametrize("column_type", ["STRING", "INT64", "FLOAT64", "TIME"])
def test_other_column_types_are_refused_with_the_type_named(column_type):
    with pytest.raises(UnsupportedColumnTypeError, match=f"type {column_type}; expected one of DATE, DATETIME, TIMESTAMP"):
        day_filter("c", column_type, dt.date(2026, 11, 21), True)


@pytest.mark.parametrize("value, days", [(0, 0), (3, 3), ("2", 2), (" 7 ", 7), ("+1", 1), ("007", 7), (3660, 3660)])
def test_windows_accept_whole_days_as_ints_or_rendered_text(value, days):
    assert parse_window(value) == days


def test_a_keyword_named_load_column_is_quoted_in_the_filter():
    assert day_filter("end", "DATE", dt.date(2026, 11, 21), True).sql == "`end` = DATE '2026-11-21'"


@pytest.mark.parametrize(
    "value",
    ["--1", "-+1", "+-1", "²", "\uff11", "\u0663", "1\u0663", "1e3", "1_000", "0x10", "", " ", "1 2", "9" * 5000],
)
def test_windows_that_are_not_ascii_whole_numbers_are_refused_by_name(value):
    with pytest.raises(InvalidWindowError, match="dataset_load_window") as caught:
        parse_window(value)
    assert repr(value)[:40] in str(caught.value)


@pytest.mark.parametrize("value", [3661, "3661", 10**18, "999999999"])
def test_windows_beyond_ten_years_are_refused_before_the_calendar_overflows(value):
    with pytest.raises(InvalidWindowError, match="more than 3660 days"):
        parse_window(value)


def test_a_window_reaching_before_year_one_is_named_not_an_overflow():
    with pytest.raises(InvalidWindowError, match="before year 1"):
        target_date(dt.datetime(1, 1, 2, tzinfo=UTC), 5, by_kst=False)
