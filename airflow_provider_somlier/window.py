"""From a run's logical date to the one day of rows it scores.

The seed's rule: the rows read are those whose load column falls on
``(the day the DAG runs) - dataset_load_window days``, where "the day" is taken
in KST (Asia/Seoul) when ``dataset_load_by_kst`` is set, else in UTC.

A column's type decides how "falls on a day" is tested:

* ``DATE``      -- equal to the target day;
* ``DATETIME``  -- a wall-clock time in the same zone, inside ``[day 00:00, next day 00:00)``;
* ``TIMESTAMP`` -- an instant, inside the zone's day converted to UTC bounds.

The filters are half-open ranges on the raw column (never a function of it), so
BigQuery can prune partitions and the Storage Read API can push them down.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from airflow_provider_somlier.errors import InvalidArgumentError, InvalidWindowError, UnsupportedColumnTypeError
from airflow_provider_somlier.refs import validate_column_name

KST = ZoneInfo("Asia/Seoul")
UTC = dt.timezone.utc

SUPPORTED_LOAD_COLUMN_TYPES = ("DATE", "DATETIME", "TIMESTAMP")


# Ten years back is already far outside any feature table's retention; larger values
# are typos (or overflow the calendar) rather than intent.
MAX_WINDOW_DAYS = 3660
_WINDOW_TEXT = re.compile(r"\A\+?[0-9]{1,9}\Z")  # ASCII digits only: no '²', '１' or '٣'


def parse_window(value: object) -> int:
    """``dataset_load_window`` as a whole number of days in ``[0, MAX_WINDOW_DAYS]``.

    Accepts ints and ASCII integer strings (the value is a template field, so it is
    often rendered from Jinja as text); refuses bools, floats, negatives, signs other
    than one leading '+', and digits from other scripts, which Python's ``int`` would
    quietly accept.
    """
    days: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        days = value
    elif isinstance(value, str) and _WINDOW_TEXT.match(value.strip()):
        days = int(value.strip())
    if days is None or days < 0:
        raise InvalidWindowError(f"dataset_load_window must be a whole number of days >= 0, got {value!r}")
    if days > MAX_WINDOW_DAYS:
        raise InvalidWindowError(
            f"dataset_load_window {value!r} is more than {MAX_WINDOW_DAYS} days (ten years) back; "
            "expected a small number of days"
        )
    return days


def parse_bool(value: object, *, field: str) -> bool:
    """Booleans from DAG arguments or rendered templates ('True', 'false', 1, ...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n"):
        return False
    raise InvalidArgumentError(f"{field} must be true or false, got {value!r}")


def run_zone(by_kst: bool) -> dt.tzinfo:
    return KST if by_kst else UTC


def target_date(logical_date: dt.datetime, window_days: int, by_kst: bool) -> dt.date:
    """The day whose rows a run scores: the run's local date minus ``window_days``.

    ``logical_date`` must be timezone-aware (Airflow's always is). A run at
    2026-11-20 15:30 UTC is 2026-11-21 in KST, so with a window of 1 it scores
    2026-11-20 by KST and 2026-11-19 by UTC.
    """
    if logical_date.tzinfo is None:
        raise InvalidWindowError(f"logical date {logical_date!r} has no time zone")
    local_day = logical_date.astimezone(run_zone(by_kst)).date()
    try:
        return local_day - dt.timedelta(days=window_days)
    except OverflowError:
        raise InvalidWindowError(
            f"dataset_load_window {window_days} days before {local_day} is before year 1"
        ) from None


@dataclass(frozen=True)
class DayFilter:
    """The SQL predicate selecting one day of a load column, and its parts."""

    column: str
    column_type: str
    day: dt.date
    zone: dt.tzinfo

    @property
    def bounds(self) -> tuple[str, str] | None:
        """``(lower, upper)`` literals of the half-open range, or None for DATE equality."""
        if self.column_type == "DATE":
            return None
        next_day = self.day + dt.timedelta(days=1)
        if self.column_type == "DATETIME":
            return (f"DATETIME '{self.day.isoformat()} 00:00:00'", f"DATETIME '{next_day.isoformat()} 00:00:00'")
        start = dt.datetime.combine(self.day, dt.time(), self.zone).astimezone(UTC)
        end = dt.datetime.combine(next_day, dt.time(), self.zone).astimezone(UTC)
        return (f"TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}+00'", f"TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}+00'")

    @property
    def sql(self) -> str:
        """A predicate valid both in GoogleSQL and in a Storage Read ``row_restriction``."""
        bounds = self.bounds
        column = f"`{self.column}`"  # quoted: a column may be named like a keyword (``end``)
        if bounds is None:
            return f"{column} = DATE '{self.day.isoformat()}'"
        lower, upper = bounds
        return f"{column} >= {lower} AND {column} < {upper}"


def day_filter(column: str, column_type: str, day: dt.date, by_kst: bool) -> DayFilter:
    """Build the filter for ``column`` of BigQuery type ``column_type`` on ``day``."""
    validate_column_name(column, field="dataset_load_column")
    normalized = column_type.upper()
    if normalized not in SUPPORTED_LOAD_COLUMN_TYPES:
        raise UnsupportedColumnTypeError(
            f"dataset_load_column {column!r} has type {column_type}; expected one of "
            f"{', '.join(SUPPORTED_LOAD_COLUMN_TYPES)}"
        )
    return DayFilter(column=column, column_type=normalized, day=day, zone=run_zone(by_kst))
