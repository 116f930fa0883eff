"""Request text → checked values. Nothing from a request reaches SQL except through here.

Destinations must be fully qualified table ids that pass the same rules as every table
ref SoMLier takes (``refs.py``); days are ISO dates; ranges are bounded. Each failure is
a :class:`BadParameterError` naming the parameter and what it accepts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_somlier.ui.errors import BadParameterError
from airflow_provider_somlier.ui.settings import DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS

if TYPE_CHECKING:
    from airflow_provider_somlier.refs import TableRef

_DAY = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


def destination_id(text: str) -> TableRef:
    """``project.dataset.table`` as a :class:`~airflow_provider_somlier.refs.TableRef` (no default project)."""
    from airflow_provider_somlier.errors import InvalidRefError
    from airflow_provider_somlier.refs import parse_table_ref

    if not isinstance(text, str) or text.count(".") < 2 or len(text) > 1100:
        raise BadParameterError(f"destination {text[:200]!r} is not a table id: expected 'project.dataset.table'")
    try:
        return parse_table_ref(text, field="destination")
    except InvalidRefError as exc:
        raise BadParameterError(str(exc)) from None


def day(text: str, *, field: str = "day") -> dt.date:
    """An ISO date ``YYYY-MM-DD``."""
    if not isinstance(text, str) or not _DAY.match(text):
        raise BadParameterError(f"{field} {text[:40]!r} is not a date: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadParameterError(f"{field} {text!r} is not a date of the calendar") from None


@dataclass(frozen=True)
class DayRange:
    """Which days a timeline shows: the last ``days`` up to the latest written day, or ``start``..``end``."""

    days: int = DEFAULT_RANGE_DAYS
    start: dt.date | None = None
    end: dt.date | None = None

    def bounds(self, latest: dt.date) -> tuple[dt.date, dt.date]:
        """First and last day shown, given the destination's latest written day."""
        if self.start is not None and self.end is not None:
            return self.start, self.end
        return latest - dt.timedelta(days=self.days - 1), latest

    def to_dict(self) -> dict[str, object]:
        return {"days": self.days, "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None}


def day_range(days: str | None, start: str | None, end: str | None) -> DayRange:
    """``days=N`` (1..366) or ``start=…&end=…`` (at most 366 days); neither: the last 90 days."""
    if start is not None or end is not None:
        if start is None or end is None:
            raise BadParameterError("start and end go together: give both (YYYY-MM-DD) or neither")
        first, last = day(start, field="start"), day(end, field="end")
        if last < first:
            raise BadParameterError(f"end {last} is before start {first}")
        span = (last - first).days + 1
        if span > MAX_RANGE_DAYS:
            raise BadParameterError(f"a range of {span} days is longer than the {MAX_RANGE_DAYS} a page shows")
        return DayRange(days=span, start=first, end=last)
    if days is None:
        return DayRange()
    if not re.fullmatch(r"\d{1,6}", days or ""):
        raise BadParameterError(f"days {days[:40]!r} is not a whole number of days from 1 to {MAX_RANGE_DAYS}")
    count = int(days)
    if not 1 <= count <= MAX_RANGE_DAYS:
        raise BadParameterError(f"days {count} is outside 1..{MAX_RANGE_DAYS}")
    return DayRange(days=count)


def map_index(text: str | None) -> int:
    """A task instance's map index; the UI leaves ``{MAP_INDEX}`` unfilled for unmapped tasks (-1)."""
    if text is None or not re.fullmatch(r"-?\d{1,9}", text):
        return -1
    return int(text)
