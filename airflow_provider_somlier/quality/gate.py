"""The quality gate: settings parsed and checked early, then a verdict on a day's profile and drift.

Settings come from the DAG (operator arguments, possibly templated), so they are parsed
when the DAG file is (literal values) and again before a row is read (rendered values);
anything unknown is refused by name instead of being ignored. The verdict lists every
failed check with its column, figure and threshold, failures first.

Checks (``quality_checks`` keys; a value of ``None`` turns a check off):

``max_null_fraction`` (default 0.1)
    NULLs and NaNs over rows, per profiled column; ``max_null_fraction_per_column``
    ({column: limit or None}) overrides it column by column (a feature that is often NULL).
``max_psi`` (default 0.25)
    PSI against the baseline, for any column; ``max_psi_per_column`` ({column: limit or None})
    overrides it column by column. A column whose PSI two draws of one distribution could
    reach (``drift.psi_noise``: a small day, many categories) is not judged on it, and says so.
``max_mean_shift`` (default 3)
    How far a numeric column's mean moved from the baseline's, in the baseline's standard
    deviations (``max_mean_shift_per_column`` overrides it). Two draws of one distribution
    differ by about ``sqrt(1/day + 1/baseline)`` of them; a feature whose values all share one
    histogram bin (a latitude moved by a degree, 20 of its standard deviations) is seen here.
``prediction_range`` (default ``None``: any finite value)
    ``[low, high]`` for every prediction column; NaN or infinite predictions always fail it.
``row_count_factor`` (default 1.5)
    The day's rows within ``[reference / factor, reference × factor]``: the median of the
    baseline's days of the same weekday when it holds two or more, else the range of its days.

The defaults catch an all-NULL column, a ×1000 unit change, 3 % of a day's volume, every row
duplicated, NaN predictions and an unseen category without flagging a new draw of a normal day.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_somlier.quality.drift import DriftReport
    from airflow_provider_somlier.quality.profile import DayProfile

DEFAULT_CHECKS: dict[str, Any] = {
    "max_null_fraction": 0.1,
    "max_psi": 0.25,
    "max_psi_per_column": {},
    "max_null_fraction_per_column": {},
    "max_mean_shift": 3.0,
    "max_mean_shift_per_column": {},
    "prediction_range": None,
    "row_count_factor": 1.5,
}
PER_COLUMN = ("max_psi_per_column", "max_null_fraction_per_column", "max_mean_shift_per_column")
# A mean shift is judged where two draws of one distribution stay this many of their own
# standard deviations (sqrt(1/day + 1/baseline) baseline sds) below the limit: not on 1-row days.
MEAN_SHIFT_NOISE_SIGMAS = 6
ON_FAILURE_CHOICES = ("fail", "warn")
DEFAULT_BASELINE = "previous_days:7"
MAX_BASELINE_DAYS = 366
_PREVIOUS_DAYS = re.compile(r"previous_days:(-?[0-9]{1,9})")


def _error(message: str) -> Exception:
    from airflow_provider_somlier.errors import QualitySettingError

    return QualitySettingError(message)


def _number(value: Any, name: str, *, low: float = 0.0, high: float = math.inf) -> float:
    expected = f"quality_checks {name} must be a number from {low:g} to {high:g}, got"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _error(f"{expected} {value!r:.60}")
    try:
        return float(value)
    except OverflowError:  # an int beyond a float: 10**400
        raise _error(f"{expected} an integer of {len(str(abs(value)))} digits") from None


def _per_column(value: Any, name: str, *, high: float) -> dict[str, float | None]:
    """A ``{column: limit or None}`` mapping (None: that column is not checked)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(f"quality_checks {name} must map column names to limits (or None), got {value!r:.60}")
    return {str(c): None if v is None else _number(v, f"{name}[{c!r}]", high=high) for c, v in value.items()}


@dataclass(frozen=True)
class QualitySettings:
    """Parsed ``quality_checks``, ``baseline`` and ``on_quality_failure``."""

    max_null_fraction: float | None = 0.1
    max_psi: float | None = 0.25
    max_psi_per_column: dict[str, float | None] = field(default_factory=dict)
    max_null_fraction_per_column: dict[str, float | None] = field(default_factory=dict)
    max_mean_shift: float | None = 3.0
    max_mean_shift_per_column: dict[str, float | None] = field(default_factory=dict)
    prediction_range: tuple[float, float] | None = None
    row_count_factor: float | None = 1.5
    baseline: str = DEFAULT_BASELINE  # "previous_days:N", "training" or "none"
    on_failure: str = "fail"

    @property
    def baseline_days(self) -> int | None:
        match = _PREVIOUS_DAYS.fullmatch(self.baseline)
        return int(match.group(1)) if match else None

    def check_columns(self, columns: Collection[str], *, where: str, predictions_known: bool = False) -> None:
        """Refuse a per-column limit on a column the run does not profile (before reading a row).

        Prediction columns are named only once the model has answered, so ``prediction`` and
        ``prediction_<name>`` are accepted for them until then (``predictions_known``: they are
        in ``columns``, and anything else is refused).
        """
        for setting in PER_COLUMN:
            unknown = [c for c in getattr(self, setting) if c not in columns and (
                predictions_known or (c != "prediction" and not c.startswith("prediction_")))]
            if unknown:
                raise _error(
                    f"quality_checks {setting} names column(s) {', '.join(map(repr, unknown))} that {where} does "
                    f"not profile; profiled columns: {', '.join(sorted(columns))}"
                    + ("" if predictions_known else " and the prediction column(s)")
                )


def parse_settings(quality_checks: Any = None, baseline: Any = DEFAULT_BASELINE, on_failure: Any = "fail") -> QualitySettings:
    """Check and parse the three settings; a JSON string is accepted for ``quality_checks`` (templates)."""
    if on_failure not in ON_FAILURE_CHOICES:
        raise _error(f"on_quality_failure must be one of {', '.join(ON_FAILURE_CHOICES)}, got {on_failure!r}")
    baseline = parse_baseline(baseline)
    if isinstance(quality_checks, str):
        try:
            quality_checks = json.loads(quality_checks) if quality_checks.strip() else None
        except json.JSONDecodeError as exc:
            raise _error(f"quality_checks must be a mapping or its JSON text, got {quality_checks!r} ({exc})") from None
    if quality_checks is None:
        quality_checks = {}
    if not isinstance(quality_checks, Mapping):
        raise _error(f"quality_checks must be a mapping of check name to threshold, got {quality_checks!r}")
    unknown = [name for name in quality_checks if name not in DEFAULT_CHECKS]
    if unknown:
        raise _error(
            f"unknown quality check(s) {', '.join(map(repr, unknown))}; known checks: {', '.join(DEFAULT_CHECKS)}"
        )
    checks = {**DEFAULT_CHECKS, **quality_checks}
    null = checks["max_null_fraction"]
    psi = checks["max_psi"]
    span = checks["prediction_range"]
    if span is not None:
        if not isinstance(span, (list, tuple)) or len(span) != 2:
            raise _error(f"quality_checks prediction_range must be [low, high] or None, got {span!r}")
        low, high = (_number(v, "prediction_range", low=-math.inf) for v in span)
        if not low <= high:
            raise _error(f"quality_checks prediction_range must have low <= high, got {list(span)!r}")
        span = (low, high)
    factor = checks["row_count_factor"]
    return QualitySettings(
        max_null_fraction=None if null is None else _number(null, "max_null_fraction", high=1.0),
        max_psi=None if psi is None else _number(psi, "max_psi"),
        max_psi_per_column=_per_column(checks["max_psi_per_column"], "max_psi_per_column", high=math.inf),
        max_null_fraction_per_column=_per_column(
            checks["max_null_fraction_per_column"], "max_null_fraction_per_column", high=1.0),
        max_mean_shift=None if checks["max_mean_shift"] is None else _number(checks["max_mean_shift"], "max_mean_shift"),
        max_mean_shift_per_column=_per_column(checks["max_mean_shift_per_column"], "max_mean_shift_per_column",
                                              high=math.inf),
        prediction_range=span,
        row_count_factor=None if factor is None else _number(factor, "row_count_factor", low=1.0),
        baseline=baseline,
        on_failure=on_failure,
    )


def parse_baseline(baseline: Any) -> str:
    """``previous_days:N`` (1 ≤ N ≤ 366), ``training`` or ``none``; anything else is refused by name."""
    if baseline is None:
        return "none"
    if baseline in ("training", "none"):
        return baseline
    match = _PREVIOUS_DAYS.fullmatch(baseline) if isinstance(baseline, str) else None
    if match is None:
        raise _error(f"baseline must be 'previous_days:N', 'training' or 'none', got {baseline!r:.60}")
    days = int(match.group(1))
    if not 1 <= days <= MAX_BASELINE_DAYS:
        raise _error(f"baseline {baseline!r}: N must be a whole number of days from 1 to {MAX_BASELINE_DAYS}")
    return f"previous_days:{days}"


@dataclass(frozen=True)
class CheckResult:
    check: str
    column: str | None  # None for the day as a whole
    figure: Any
    threshold: Any
    passed: bool

    def describe(self) -> str:
        where = f" on {self.column!r}" if self.column else ""
        verb = "within" if self.passed else "outside"
        return f"{self.check}{where}: {self.figure} {verb} {self.threshold}"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "column": self.column, "figure": self.figure,
                "threshold": self.threshold, "passed": self.passed}


@dataclass(frozen=True)
class Verdict:
    results: list[CheckResult]
    skipped: dict[str, str]  # check → why it did not run
    on_failure: str

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def outcome(self) -> str:
        """``pass``, or ``fail``/``warn`` (as ``on_quality_failure`` says) when a check failed."""
        return self.on_failure if self.failures else "pass"

    def message(self) -> str:
        failed = "; ".join(r.describe() for r in self.failures)
        return f"{len(self.failures)} quality check(s) failed: {failed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.outcome,
            "failures": [r.to_dict() for r in self.failures],
            "checks_passed": sum(r.passed for r in self.results),
            "skipped": dict(self.skipped),
        }


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def evaluate(profile: DayProfile, drift: DriftReport | None, settings: QualitySettings) -> Verdict:
    """Run every enabled check on the day's profile (and its drift, when there is a baseline)."""
    from airflow_provider_somlier.quality.profile import PREDICTION

    results: list[CheckResult] = []
    skipped: dict[str, str] = {}
    settings.check_columns(profile.columns, where="this run", predictions_known=True)
    for column in profile.columns.values():
        limit = settings.max_null_fraction_per_column.get(column.name, settings.max_null_fraction)
        if limit is not None:
            fraction = column.null_fraction
            results.append(CheckResult("max_null_fraction", column.name, _round(fraction), limit, fraction <= limit))
    for column in (c for c in profile.columns.values() if c.role == PREDICTION and c.kind == "numeric"):
        low, high = settings.prediction_range or (-math.inf, math.inf)
        if column.nans:
            results.append(CheckResult("prediction_range", column.name, f"{column.nans} NaN prediction(s)",
                                       "finite values", False))
        elif column.count:
            finite = math.isfinite(column.min) and math.isfinite(column.max)
            inside = finite and low <= column.min and column.max <= high
            results.append(CheckResult("prediction_range", column.name, [column.min, column.max],
                                       [low, high] if settings.prediction_range else "finite values", inside))
    wants_drift = (settings.max_psi is not None or settings.max_psi_per_column or settings.row_count_factor is not None
                   or settings.max_mean_shift is not None or settings.max_mean_shift_per_column)
    if drift is None:
        if wants_drift:
            why = ("no baseline yet (no earlier day of this destination, or no training profile)"
                   if settings.baseline != "none" else "baseline='none'")
            for check in ("max_psi", "max_mean_shift", "row_count_factor"):
                skipped[check] = why
        results.sort(key=lambda r: r.passed)
        return Verdict(results, skipped, settings.on_failure)
    noisy = []
    for name, column in drift.columns.items():
        limit = settings.max_psi_per_column.get(name, settings.max_psi)
        if limit is None or column.psi is None:
            continue
        if column.psi_noise >= limit:
            noisy.append(f"{name!r} ({_round(column.psi_noise)})")
            continue
        figure: Any = _round(column.psi)
        if column.unseen:
            figure = f"{figure} (unseen: {', '.join(map(repr, column.unseen))})"
        results.append(CheckResult("max_psi", name, figure, limit, column.psi <= limit))
    too_few = []
    for name, column in drift.columns.items():
        limit = settings.max_mean_shift_per_column.get(name, settings.max_mean_shift)
        if limit is None or column.mean_shift is None:
            continue
        if MEAN_SHIFT_NOISE_SIGMAS * column.mean_shift_noise >= limit:  # a day of a few values
            too_few.append(repr(name))
            continue
        results.append(CheckResult("max_mean_shift", name, f"{_round(column.mean_shift)} standard deviations",
                                   limit, abs(column.mean_shift) <= limit))
    if too_few:
        skipped["max_mean_shift"] = (
            f"the day has {profile.rows:,} row(s): too few for a mean to tell a shift from sampling noise on "
            f"{', '.join(too_few)}"
        )
    if noisy:
        skipped["max_psi"] = (
            f"the day has {profile.rows:,} row(s): too few for PSI to tell drift from sampling noise on "
            f"{', '.join(noisy)} (the PSI two draws of one distribution may reach, at or above the limit)"
        )
    if settings.row_count_factor is not None:
        reference = drift.rows_reference
        if reference is None:
            skipped["row_count_factor"] = f"the baseline ({drift.baseline}) has no daily row count"
        else:
            factor = settings.row_count_factor
            results.append(CheckResult(
                "row_count_factor", None, reference.describe(profile.rows),
                f"[{_round(1 / factor)}x, {factor:g}x]", 1 / factor <= reference.ratio(profile.rows) <= factor,
            ))
    results.sort(key=lambda r: r.passed)
    return Verdict(results, skipped, settings.on_failure)
