"""Drift of a day's profile against a baseline: PSI per column, NULL-fraction change, row count.

The population stability index compares two distributions over the same bins:
``PSI = Σ (day_i − base_i) · ln(day_i / base_i)`` over bin fractions. The bins come from the
baseline: numeric columns group the profile's fixed fine bins into ``PSI_GROUPS`` coarse ones
at the baseline's quantiles (so each holds about a tenth of the baseline's values, and a
×1000 unit change moves the whole day into the last one); categorical columns use the
baseline's categories plus one bucket for every other value (an unseen category lands
there). Empty bins are floored at ``PSI_FLOOR`` so one new bucket gives a large, finite PSI.
Conventional reading: below 0.1 stable, 0.1–0.25 a shift worth a look, above 0.25 a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_somlier.quality.profile import CATEGORICAL, NUMERIC, ColumnProfile, DayProfile, bin_lower_bound

PSI_GROUPS = 10
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class Baseline:
    """What a day is compared with: a merged profile, where it came from, and a typical day's rows."""

    profile: DayProfile
    source: str  # "previous_days:N (2026-11-10 … 2026-11-16)" or "training run <id>"
    daily_rows: float | None  # mean rows of the baseline's days; None for a training frame


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    psi: float | None  # None when either side holds no value to compare
    null_fraction: float
    baseline_null_fraction: float
    unseen: tuple[str, ...] = ()  # categorical values the baseline never held (first few)

    @property
    def null_fraction_change(self) -> float:
        return self.null_fraction - self.baseline_null_fraction


@dataclass(frozen=True)
class DriftReport:
    baseline: str
    row_ratio: float | None  # the day's rows over the baseline's daily rows
    columns: dict[str, ColumnDrift] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "row_ratio": self.row_ratio,
            "columns": {
                name: {"psi": d.psi, "null_fraction_change": d.null_fraction_change, "unseen": list(d.unseen)}
                for name, d in self.columns.items()
            },
        }


def psi(day: Mapping[Any, int], base: Mapping[Any, int]) -> float | None:
    """PSI of two histograms over the same buckets (bucket → count); None when either is empty."""
    import math

    day_total, base_total = sum(day.values()), sum(base.values())
    if not day_total or not base_total:
        return None
    total = 0.0
    for bucket in set(day) | set(base):
        d = max(day.get(bucket, 0) / day_total, PSI_FLOOR)
        b = max(base.get(bucket, 0) / base_total, PSI_FLOOR)
        total += (d - b) * math.log(d / b)
    return total


def numeric_groups(base: ColumnProfile, groups: int = PSI_GROUPS) -> list[float]:
    """The baseline's group edges (lower bounds, first one −inf) over its fine bins, by quantile."""
    import numpy as np

    bins = base.histogram()
    if not bins:
        return []
    keys = np.array([bin_lower_bound(code) for code in bins])
    counts = np.array(list(bins.values()), dtype=np.float64)
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    before = np.cumsum(counts) - counts
    group = np.minimum((before * groups / counts.sum()).astype(int), groups - 1)
    starts = np.flatnonzero(np.diff(group, prepend=-1))
    edges = keys[starts].tolist()
    edges[0] = float("-inf")
    return edges


def grouped(column: ColumnProfile, edges: list[float]) -> dict[int, int]:
    """A numeric column's counts per baseline group."""
    import bisect

    counts: dict[int, int] = {}
    for code, n in column.histogram().items():
        group = bisect.bisect_right(edges, bin_lower_bound(code)) - 1
        counts[group] = counts.get(group, 0) + n
    return counts


def column_drift(day: ColumnProfile, base: ColumnProfile) -> ColumnDrift:
    """PSI and NULL-fraction change of one column against its baseline."""
    unseen: tuple[str, ...] = ()
    value = None
    if day.kind == NUMERIC:
        edges = numeric_groups(base)
        if edges:
            value = psi(grouped(day, edges), grouped(base, edges))
    elif day.kind == CATEGORICAL:
        known = base.categories
        other_key = object()
        day_counts: dict[Any, int] = {other_key: day.other}
        for category, n in day.categories.items():
            key = category if category in known else other_key
            day_counts[key] = day_counts.get(key, 0) + n
        value = psi(day_counts, {**known, other_key: base.other})
        if not base.other:
            unseen = tuple(sorted((c for c in day.categories if c not in known), key=lambda c: -day.categories[c])[:5])
    return ColumnDrift(
        column=day.name, psi=value, null_fraction=day.null_fraction,
        baseline_null_fraction=base.null_fraction, unseen=unseen,
    )


def compare(day: DayProfile, baseline: Baseline) -> DriftReport:
    """Drift of every column the baseline also profiled, and the day's rows against its typical day."""
    columns = {
        name: column_drift(column, baseline.profile.columns[name])
        for name, column in day.columns.items()
        if name in baseline.profile.columns and baseline.profile.columns[name].kind == column.kind
    }
    ratio = day.rows / baseline.daily_rows if baseline.daily_rows else None
    return DriftReport(baseline=baseline.source, row_ratio=ratio, columns=columns)
