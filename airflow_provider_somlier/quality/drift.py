"""Drift of a day's profile against a baseline: PSI per column, NULL-fraction change, row count.

The population stability index compares two distributions over the same bins:
``PSI = Σ (day_i − base_i) · ln(day_i / base_i)`` over bin fractions. The bins come from the
baseline: numeric columns group the profile's fixed fine bins into ``PSI_GROUPS`` coarse ones
at the baseline's quantiles (so each holds about a tenth of the baseline's values), plus one
group below and one above the baseline's range widened by its width on each side -- a ×1000
unit change, a column gone to 0 or a shift far past the baseline's range lands there,
however narrow the baseline (a latitude, a year: all in one fine bin). Categorical columns
use the baseline's categories that a day of this size is expected to hold at least
``MIN_EXPECTED_PER_GROUP`` times, plus one bucket for every other value (an unseen category lands there): more, rarer buckets would
measure sampling noise. Empty bins are floored at ``PSI_FLOOR`` so one new bucket gives a
large, finite PSI. Conventional reading: below 0.1 stable, 0.1–0.25 a shift worth a look,
above 0.25 a change.

On two samples of one distribution PSI is about ``(groups − 1) · (1/day values + 1/baseline
values)`` on average (a χ² scaled by that sum); :func:`psi_noise` is that mean plus five of
its standard deviations, and a column whose noise reaches its limit is not judged on PSI.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_somlier.quality.profile import (
    CATEGORICAL,
    NUMERIC,
    ColumnProfile,
    DayProfile,
    bin_lower_bound,
    bin_of,
)

PSI_GROUPS = 10
PSI_FLOOR = 1e-4
# A category is its own PSI bucket when the day is expected to hold it at least this often
# (the χ² rule of thumb is 5); rarer ones share the "other" bucket.
MIN_EXPECTED_PER_GROUP = 10
BELOW, ABOVE = "below", "above"  # numeric groups far outside the baseline's range


@dataclass(frozen=True)
class Baseline:
    """What a day is compared with: a merged profile, where it came from, and each baseline day's rows."""

    profile: DayProfile
    source: str  # "previous_days:N (2026-11-10 … 2026-11-16)" or "training run <id>"
    day_rows: Mapping[dt.date, int] = field(default_factory=dict)  # empty for a training frame

    @classmethod
    def of_days(cls, days: Mapping[dt.date, DayProfile], source: str) -> Baseline:
        """The baseline of several scored days (``merge_days``: category counts kept only where exact)."""
        from airflow_provider_somlier.quality.store import merge_days

        merged = merge_days([days[d] for d in sorted(days)])
        return cls(profile=merged, source=source, day_rows={d: days[d].rows for d in sorted(days)})

    @property
    def daily_rows(self) -> float | None:
        """The baseline days' mean rows; None for a training frame."""
        return sum(self.day_rows.values()) / len(self.day_rows) if self.day_rows else None

    def rows_reference(self, day: dt.date | None) -> RowsReference | None:
        """What a day's row count is judged against (None for a training frame).

        With at least two baseline days of ``day``'s weekday, their median: a business with quiet
        weekends is compared weekend with weekend (a weekend with every row doubled is caught).
        Otherwise the range of the baseline days: a day between the quietest and the busiest
        (within the factor) is normal, whichever weekday it is.
        """
        if not self.day_rows:
            return None
        same = [n for d, n in self.day_rows.items() if day is not None and d.weekday() == day.weekday()]
        if len(same) >= 2:
            median = statistics.median(same)
            return RowsReference(median, median, f"the median of the baseline's {len(same)} {day:%A}s")
        low, high = min(self.day_rows.values()), max(self.day_rows.values())
        if low == high:
            return RowsReference(low, high, "the baseline's day" if len(self.day_rows) == 1 else "the baseline's days")
        return RowsReference(low, high, f"the baseline's days ({low:,} to {high:,} rows)")


@dataclass(frozen=True)
class RowsReference:
    """A day's rows are normal within ``[low / factor, high × factor]``."""

    low: float
    high: float
    what: str

    def ratio(self, rows: int) -> float:
        """How far ``rows`` is outside ``[low, high]``, as a factor (1.0 inside; below 1 when fewer)."""
        if rows < self.low:
            return rows / self.low if self.low else 1.0
        if rows > self.high:
            return rows / self.high if self.high else math.inf
        return 1.0

    def describe(self, rows: int) -> str:
        """``rows`` against this reference, in words: "500 rows = 0.5x the median of …"."""
        ratio = float(f"{self.ratio(rows):.6g}")
        if self.low == self.high:
            return f"{rows:,} rows = {ratio:g}x {self.what}"
        if ratio == 1.0:
            return f"{rows:,} rows, within {self.what}"
        side = "quietest" if rows < self.low else "busiest"
        return f"{rows:,} rows = {ratio:g}x the {side} of {self.what}"


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    psi: float | None  # None when either side holds no value to compare
    null_fraction: float
    baseline_null_fraction: float
    unseen: tuple[str, ...] = ()  # categorical values the baseline never held (first few)
    psi_noise: float = 0.0  # PSI two draws of one distribution may reach (``psi_noise``)
    # (day mean − baseline mean) / baseline std; None: not numeric, or a constant baseline
    mean_shift: float | None = None
    # the standard deviation of that shift between two draws of one distribution: sqrt(1/day + 1/baseline)
    mean_shift_noise: float = 0.0

    @property
    def null_fraction_change(self) -> float:
        return self.null_fraction - self.baseline_null_fraction


@dataclass(frozen=True)
class DriftReport:
    baseline: str
    columns: dict[str, ColumnDrift] = field(default_factory=dict)
    rows_reference: RowsReference | None = None  # what the day's rows are judged against; None: no day rows


def psi(day: Mapping[Any, int], base: Mapping[Any, int]) -> float | None:
    """PSI of two histograms over the same buckets (bucket → count); None when either is empty."""
    day_total, base_total = sum(day.values()), sum(base.values())
    if not day_total or not base_total:
        return None
    total = 0.0
    for bucket in set(day) | set(base):
        d = max(day.get(bucket, 0) / day_total, PSI_FLOOR)
        b = max(base.get(bucket, 0) / base_total, PSI_FLOOR)
        total += (d - b) * math.log(d / b)
    return total


def psi_noise(groups: int, day_values: int, base_values: int) -> float:
    """The PSI two samples of one distribution reach: its mean plus five standard deviations.

    Both are those of a χ² with ``groups − 1`` degrees of freedom scaled by ``1/day + 1/base``.
    """
    if groups < 2 or not day_values or not base_values:
        return 0.0
    scale = 1 / day_values + 1 / base_values
    return scale * (groups - 1 + 5 * math.sqrt(2 * (groups - 1)))


@dataclass(frozen=True)
class NumericGroups:
    """A baseline's coarse groups over the fine bins: its deciles, and the bins far outside its range.

    ``edges`` are the deciles' first bins (a bin below the first is in the first decile, one
    past the last in the last: a moderate excursion reads as the shift it is). ``below`` and
    ``above`` are the bins beyond the baseline's range by more than its own width (``min −
    (max − min)``, ``max + (max − min)``): a ×1000 unit change, a column gone to 0, a latitude
    moved a degree, all far outside however narrow the baseline, land there.
    """

    edges: list[float]
    below: float  # lower bound of the first bin that is not BELOW
    above: float  # lower bound of the last bin that is not ABOVE

    def of(self, key: float) -> int | str:
        """The group of a fine bin with lower bound ``key``: an index, ``BELOW`` or ``ABOVE``."""
        import bisect

        if key < self.below:
            return BELOW
        if key > self.above:
            return ABOVE
        return max(bisect.bisect_right(self.edges, key) - 1, 0)

    @property
    def quantile_groups(self) -> int:
        """The groups inside the baseline's range (what its sampling noise depends on)."""
        return len(self.edges)


def numeric_groups(base: ColumnProfile, groups: int = PSI_GROUPS) -> NumericGroups | None:
    """The baseline's groups over its fine bins, by quantile; None when it holds no value."""
    import numpy as np

    bins = base.histogram()
    if not bins or base.min is None or base.max is None:
        return None
    keys = np.array([bin_lower_bound(code) for code in bins])
    counts = np.array(list(bins.values()), dtype=np.float64)
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    before = np.cumsum(counts) - counts
    group = np.minimum((before * groups / counts.sum()).astype(int), groups - 1)
    starts = np.flatnonzero(np.diff(group, prepend=-1))
    low, high = _far_outside(base.min, base.max)
    return NumericGroups(edges=keys[starts].tolist(), below=low, above=high)


def _far_outside(low: float, high: float) -> tuple[float, float]:
    """The lower bounds of the bins that end the baseline's range widened by its width on each side."""
    span = high - low
    widened_low, widened_high = low - span, high + span
    if not (math.isfinite(widened_low) and math.isfinite(widened_high)):
        return -math.inf, math.inf
    return bin_lower_bound(bin_of(widened_low)), bin_lower_bound(bin_of(widened_high))


def grouped(column: ColumnProfile, groups: NumericGroups) -> dict[int | str, int]:
    """A numeric column's counts per baseline group."""
    counts: dict[int | str, int] = {}
    for code, n in column.histogram().items():
        group = groups.of(bin_lower_bound(code))
        counts[group] = counts.get(group, 0) + n
    return counts


def category_groups(day: ColumnProfile, base: ColumnProfile) -> list[str]:
    """The baseline's categories that are PSI buckets of their own against ``day``.

    Each must be counted exactly on both sides (a stored day keeps only its top categories; a
    category beyond them is in its ``other``) and be expected at least ``MIN_EXPECTED_PER_GROUP``
    times in a day of this size.
    """
    if not base.count:
        return []
    share = day.count / base.count
    return [c for c, n in base.categories.items()
            if n * share >= MIN_EXPECTED_PER_GROUP and (c in day.categories or not day.other)]


def column_drift(day: ColumnProfile, base: ColumnProfile) -> ColumnDrift:
    """PSI and NULL-fraction change of one column against its baseline."""
    unseen: tuple[str, ...] = ()
    value, noise = None, 0.0
    shift, shift_noise = None, 0.0
    if day.kind == NUMERIC:
        groups = numeric_groups(base)
        if groups is not None:
            value = psi(grouped(day, groups), grouped(base, groups))
            noise = psi_noise(groups.quantile_groups, day.count, base.count)
        if day.count and base.count and base.std:
            shift = (day.mean - base.mean) / base.std
            shift_noise = math.sqrt(1 / day.count + 1 / base.count)
    elif day.kind == CATEGORICAL:
        kept = category_groups(day, base)
        rest = object()
        day_counts = {c: day.categories.get(c, 0) for c in kept}
        base_counts = {c: base.categories[c] for c in kept}
        day_counts[rest] = day.count - sum(day_counts.values())
        base_counts[rest] = base.count - sum(base_counts.values())
        value = psi(day_counts, base_counts)
        noise = psi_noise(len(kept) + 1, day.count, base.count)
        if not base.other:
            known = base.categories
            unseen = tuple(sorted((c for c in day.categories if c not in known), key=lambda c: -day.categories[c])[:5])
    return ColumnDrift(
        column=day.name, psi=value, null_fraction=day.null_fraction,
        baseline_null_fraction=base.null_fraction, unseen=unseen, psi_noise=noise, mean_shift=shift,
        mean_shift_noise=shift_noise,
    )


def compare(day: DayProfile, baseline: Baseline, target: dt.date | None = None) -> DriftReport:
    """Drift of every column the baseline also profiled, and the day's rows against the baseline's days.

    ``target`` is the day's date (its weekday picks the rows reference); None compares with the range.
    """
    columns = {
        name: column_drift(column, baseline.profile.columns[name])
        for name, column in day.columns.items()
        if name in baseline.profile.columns and baseline.profile.columns[name].kind == column.kind
    }
    return DriftReport(baseline=baseline.source, columns=columns, rows_reference=baseline.rows_reference(target))
