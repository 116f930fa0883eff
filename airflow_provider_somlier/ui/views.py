"""The pages' data, built from profile rows: one dict per page, served as JSON or rendered as HTML.

Pure functions over the rows ``reader.py`` returns (no I/O here), so the JSON API and the
HTML pages cannot disagree, and the figures are tested without a browser. Drift on the day
page is recomputed from the stored profiles with the same code the gate runs
(``quality/drift.py``), against the same kind of baseline the writing task asked for; the
failed checks shown are the ones the gate recorded when it wrote the day.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_somlier.quality.profile import CATEGORICAL, NUMERIC, PREDICTION, bin_lower_bound

if TYPE_CHECKING:
    from airflow_provider_somlier.quality.gate import QualitySettings
    from airflow_provider_somlier.quality.profile import ColumnProfile
    from airflow_provider_somlier.ui.catalog import Destination

QUANTILES = {"p10": 0.10, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p90": 0.90}
MAX_CATEGORIES_SHOWN = 12


@dataclass(frozen=True)
class Links:
    """Where the pages link to: their own routes, Airflow's run pages, the MLflow UI.

    ``app_root`` is the path the app is mounted at as the request saw it (``/somlier``, or
    ``/airflow/somlier`` behind a proxy), so links stay right wherever Airflow is served.
    """

    app_root: str
    mlflow_tracking_url: str = ""  # an http(s) registry, or an MLflow UI serving a database registry

    @property
    def airflow_root(self) -> str:
        return self.app_root.rsplit("/", 1)[0] if "/" in self.app_root else ""

    def destination(self, table_id: str, **query: Any) -> str:
        suffix = "&".join(f"{k}={quote(str(v))}" for k, v in query.items() if v is not None)
        return f"{self.app_root}/destinations/{quote(table_id)}" + (f"?{suffix}" if suffix else "")

    def day(self, table_id: str, day: dt.date | str) -> str:
        return f"{self.app_root}/destinations/{quote(table_id)}/days/{day}"

    def dag_run(self, dag_id: str | None, run_id: str | None) -> str | None:
        if not dag_id or not run_id:
            return None
        return f"{self.airflow_root}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    def model_version(self, name: str | None, version: Any) -> str | None:
        if not name or version is None or not self.mlflow_tracking_url:
            return None
        from airflow_provider_somlier.links import model_version_url

        return model_version_url(self.mlflow_tracking_url, name, str(version)) or None


# -- figures from stored histograms ------------------------------------------------------------
def quantiles(histogram: Mapping[str, Any] | None, low: float | None, high: float | None) -> dict[str, float | None]:
    """Approximate quantiles from a numeric column's fixed bins (within one bin, about 6 %).

    Values are spread evenly inside a bin, and the first and last bins are clipped to the
    column's min and max, so p0 and p100 are exact.
    """
    bins = {int(code): int(n) for code, n in (histogram or {}).get("bins", {}).items() if int(n) > 0}
    total = sum(bins.values())
    if not total or low is None or high is None:
        return {name: None for name in QUANTILES}
    spans = []
    for code in bins:
        a, b = bin_lower_bound(code), bin_lower_bound(code + 1)
        lo, hi = (a, b) if a <= b else (b, a)
        lo, hi = max(lo, low), min(hi, high) if math.isfinite(hi) else high
        spans.append((lo, max(hi, lo), bins[code]))
    spans.sort()
    result: dict[str, float | None] = {}
    for name, q in QUANTILES.items():
        target, seen = q * total, 0
        for lo, hi, n in spans:
            if seen + n >= target:
                result[name] = lo + (hi - lo) * ((target - seen) / n)
                break
            seen += n
        else:
            result[name] = high
    return result


def _failures(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The day's failed checks, as the gate recorded them (each row holds those naming it or the day)."""
    seen: dict[tuple[str, Any], dict[str, Any]] = {}
    for row in rows:
        try:
            recorded = json.loads(row.get("failures") or "[]")
        except ValueError:
            continue
        for failure in recorded if isinstance(recorded, list) else ():
            if isinstance(failure, dict):
                seen.setdefault((str(failure.get("check")), failure.get("column")), failure)
    return sorted(seen.values(), key=lambda f: (f.get("column") is not None, str(f.get("column")), str(f.get("check"))))


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (None if value is None else str(value))


def _by_day(rows: Sequence[Mapping[str, Any]]) -> dict[dt.date, list[Mapping[str, Any]]]:
    days: dict[dt.date, list[Mapping[str, Any]]] = {}
    for row in rows:
        days.setdefault(row["target_date"], []).append(row)
    return days


def _day_summary(day: dt.date, rows: Sequence[Mapping[str, Any]], run_dags: Mapping[str, str], links: Links,
                 table_id: str) -> dict[str, Any]:
    first = rows[0]
    run_id = first.get("airflow_run_id")
    dag_id = run_dags.get(run_id) if run_id else None
    return {
        "target_date": day.isoformat(),
        "rows": first.get("day_rows"),
        "model_name": first.get("model_name"),
        "model_version": first.get("model_version"),
        "model_version_url": links.model_version(first.get("model_name"), first.get("model_version")),
        "predicted_at": _iso(first.get("predicted_at")),
        "verdict": first.get("verdict") or "pass",
        "failures": _failures(rows),
        "dag_id": dag_id,
        "run_id": run_id,
        "dag_run_url": links.dag_run(dag_id, run_id),
        "url": links.day(table_id, day),
    }


# -- page (a): every destination ---------------------------------------------------------------
def destination_summary(destination: Destination, latest_rows: Sequence[Mapping[str, Any]],
                        run_dags: Mapping[str, str], links: Links) -> dict[str, Any]:
    """One line of the overview: the destination's latest day, model, version and verdict."""
    summary: dict[str, Any] = {
        "destination": destination.table_id,
        "dags": sorted(destination.dag_ids),
        "url": links.destination(destination.table_id),
        "error": None,
        "last_day": None,
    }
    if latest_rows:
        summary["last_day"] = _day_summary(latest_rows[0]["target_date"], latest_rows, run_dags, links,
                                           destination.table_id)
    return summary


# -- page (b): one destination's days ----------------------------------------------------------
def timeline(destination: Destination, rows: Sequence[Mapping[str, Any]], first: dt.date, last: dt.date,
             run_dags: Mapping[str, str], links: Links) -> dict[str, Any]:
    """The days ``first``..``last`` (newest first), with each prediction column's mean and quantiles."""
    days = []
    for day, day_rows in sorted(_by_day(rows).items()):
        summary = _day_summary(day, day_rows, run_dags, links, destination.table_id)
        summary["predictions"] = {}
        for row in day_rows:
            if row.get("role") == PREDICTION and row.get("kind") == NUMERIC:
                histogram = json.loads(row["histogram"]) if row.get("histogram") else None
                summary["predictions"][row["column_name"]] = {
                    "mean": row.get("mean"), "std": row.get("std"), "min": row.get("min"), "max": row.get("max"),
                    "nulls": (row.get("nulls") or 0) + (row.get("nans") or 0),
                    **quantiles(histogram, row.get("min"), row.get("max")),
                }
        days.append(summary)
    versions = sorted({(d["model_name"], d["model_version"]) for d in days}, key=lambda v: (str(v[0]), v[1] or 0))
    return {
        "destination": destination.table_id,
        "dags": sorted(destination.dag_ids),
        "start": first.isoformat(),
        "end": last.isoformat(),
        "days_written": len(days),
        "days_failing_checks": sum(1 for d in days if d["failures"]),
        "model_versions": [{"model_name": n, "model_version": v} for n, v in versions],
        "days": days[::-1],
    }


# -- page (c): one day -------------------------------------------------------------------------
def _numeric_buckets(day: ColumnProfile, base: ColumnProfile | None) -> list[dict[str, Any]]:
    """The PSI's groups of a numeric column: below the baseline, its deciles, above it."""
    from airflow_provider_somlier.quality.drift import ABOVE, BELOW, grouped, numeric_groups

    groups = numeric_groups(base if base is not None and base.count else day)
    if groups is None:
        return []
    day_counts = grouped(day, groups)
    base_counts = grouped(base, groups) if base is not None else {}
    day_total, base_total = sum(day_counts.values()) or 1, sum(base_counts.values()) or 1
    edges = groups.edges
    labels: list[tuple[int | str, str]] = [(BELOW, f"far below, < {groups.below:.3g}")]
    for index in range(groups.quantile_groups):
        labels.append((index, f"< {edges[1]:.3g}" if index == 0 and groups.quantile_groups > 1 else f"≥ {edges[index]:.3g}"))
    labels.append((ABOVE, f"far past, > {groups.above:.3g}"))
    return [{"bucket": label, "day": day_counts.get(key, 0) / day_total,
             "baseline": base_counts.get(key, 0) / base_total if base is not None else None}
            for key, label in labels if key not in (BELOW, ABOVE) or day_counts.get(key) or base_counts.get(key)]


REST_BUCKET = "(every other value)"  # not "other": a real category may be called that


# Characters that change how the text after them is laid out (bidirectional overrides, isolates, marks)
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def visible(text: str) -> str:
    """``text`` with control and bidirectional-control characters shown as escapes: a label holding
    U+202E would otherwise reverse what follows it on the page, and ESC or NUL show as nothing."""
    import unicodedata

    return "".join(f"\\u{ord(c):04x}" if c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" else c
                   for c in text)


def _category_buckets(day: ColumnProfile, base: ColumnProfile | None) -> list[dict[str, Any]]:
    base_categories = base.categories if base is not None else {}
    ranked = sorted(set(day.categories) | set(base_categories),
                    key=lambda c: -(day.categories.get(c, 0) + base_categories.get(c, 0)))
    shown = ranked[:MAX_CATEGORIES_SHOWN]
    day_total = (sum(day.categories.values()) + day.other) or 1
    base_total = ((sum(base_categories.values()) + base.other) or 1) if base is not None else 1
    buckets = [{"bucket": visible(c), "day": day.categories.get(c, 0) / day_total,
                "baseline": base_categories.get(c, 0) / base_total if base is not None else None} for c in shown]
    day_rest = day_total - sum(day.categories.get(c, 0) for c in shown)
    base_rest = base_total - sum(base_categories.get(c, 0) for c in shown) if base is not None else 0
    if day_rest > 0 or base_rest > 0:
        buckets.append({"bucket": REST_BUCKET, "day": day_rest / day_total,
                        "baseline": base_rest / base_total if base is not None else None})
    return buckets


def day_detail(destination: Destination, day: dt.date, rows: Sequence[Mapping[str, Any]],
               settings: QualitySettings, settings_source: str, run_dags: Mapping[str, str],
               links: Links) -> dict[str, Any] | None:
    """Per column: histogram against the baseline's, PSI with its threshold, NULL fraction; failures first.

    ``rows`` hold the day and the baseline days before it; None when the day itself is absent.
    """
    from airflow_provider_somlier.quality.drift import Baseline, compare
    from airflow_provider_somlier.quality.store import days_from_rows

    grouped_rows = _by_day(rows)
    if day not in grouped_rows:
        return None
    profiles = days_from_rows(rows)
    profile = profiles.pop(day)
    baseline_days = sorted(d for d in profiles if d < day)
    baseline = report = None
    if baseline_days:
        baseline = Baseline.of_days(
            {d: profiles[d] for d in baseline_days},
            f"previous {len(baseline_days)} profiled day(s), {baseline_days[0]} to {baseline_days[-1]}",
        )
        report = compare(profile, baseline, day)  # as the gate compares: same groups, same row reference
    summary = _day_summary(day, grouped_rows[day], run_dags, links, destination.table_id)
    failed_columns = {f.get("column") for f in summary["failures"]}
    reference = report.rows_reference if report is not None else None
    noisy = []
    columns = []
    for name, column in profile.columns.items():
        base = baseline.profile.columns.get(name) if baseline is not None else None
        if base is not None and base.kind != column.kind:
            base = None
        drift = report.columns.get(name) if report is not None and column.kind in (NUMERIC, CATEGORICAL) else None
        limit = settings.max_psi_per_column.get(name, settings.max_psi)
        psi = drift.psi if drift is not None else None
        judged = drift is not None and limit is not None and drift.psi_noise < limit
        if psi is not None and limit is not None and not judged:
            noisy.append(name)
        buckets = (_numeric_buckets(column, base) if column.kind == NUMERIC
                   else _category_buckets(column, base) if column.kind == CATEGORICAL else [])
        columns.append({
            "column": name, "role": column.role, "kind": column.kind, "rows": column.rows,
            "nulls": column.nulls, "nans": column.nans, "null_fraction": column.null_fraction,
            "baseline_null_fraction": base.null_fraction if base is not None else None,
            "max_null_fraction": settings.max_null_fraction,
            "min": column.min, "max": column.max, "mean": column.mean if column.count and column.kind == NUMERIC else None,
            "std": column.std,
            "psi": psi, "psi_threshold": limit,
            "psi_over": bool(judged and psi is not None and psi > limit),
            "unseen": [visible(value) for value in drift.unseen] if drift is not None else [],
            "failed": name in failed_columns,
            "histogram": buckets,
        })
    columns.sort(key=lambda c: (not c["failed"], not c["psi_over"], c["role"] != PREDICTION, c["column"]))
    return {
        "destination": destination.table_id,
        **summary,
        "day_failures": [f for f in summary["failures"] if f.get("column") is None],
        "baseline": baseline.source if baseline is not None else None,
        "baseline_rows_per_day": baseline.daily_rows if baseline is not None else None,
        "row_ratio": reference.ratio(profile.rows) if reference is not None else None,
        "rows_against_baseline": reference.describe(profile.rows) if reference is not None else None,
        "settings": {"source": settings_source, "max_null_fraction": settings.max_null_fraction,
                     "max_psi": settings.max_psi, "max_psi_per_column": dict(settings.max_psi_per_column),
                     "prediction_range": list(settings.prediction_range) if settings.prediction_range else None,
                     "row_count_factor": settings.row_count_factor, "baseline": settings.baseline,
                     "on_quality_failure": settings.on_failure},
        "psi_note": (f"too few rows to tell drift from sampling noise on {', '.join(noisy)}; the gate skips it there"
                     if noisy else None),
        "columns": columns,
        "destination_url": links.destination(destination.table_id),
    }
