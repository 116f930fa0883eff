"""The profile table ``<destination>__profile``: one row per target day and profiled column.

It is replaced in the same transaction as the day's predictions (its rows are written as
literals in that script: a few rows a day, no staging table), so a day's predictions and
its profile never disagree. Pages, downstream checks and the next runs' baselines read
this table, never the predictions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.quality.profile import CATEGORICAL, STORED_CATEGORIES, ColumnProfile, DayProfile

if TYPE_CHECKING:
    from google.cloud import bigquery

    from airflow_provider_somlier.quality.gate import Verdict
    from airflow_provider_somlier.refs import TableRef

PROFILE_SUFFIX = "__profile"
# Longer destination names are cut and given a hash, so the profile table's name stays within
# 255 characters (the emulator's limit; BigQuery's is 1,024).
_MAX_PROFILE_NAME = 255
# name → BigQuery type, in the order they are written.
PROFILE_COLUMNS: dict[str, str] = {
    "target_date": "DATE",
    "column_name": "STRING",
    "role": "STRING",  # feature | prediction
    "kind": "STRING",  # numeric | categorical | other
    "day_rows": "INT64",
    "nulls": "INT64",
    "nans": "INT64",
    "value_count": "INT64",  # rows with a value: day_rows - nulls - nans
    "min": "FLOAT64",
    "max": "FLOAT64",
    "mean": "FLOAT64",
    "std": "FLOAT64",
    "histogram": "STRING",  # JSON: {"bins": {code: rows}} or {"categories": {value: rows}, "other": rows}
    "verdict": "STRING",  # the day's: pass | warn
    "failures": "STRING",  # JSON list of the day's failed checks naming this column or the whole day
    "model_name": "STRING",
    "model_version": "INT64",
    "predicted_at": "TIMESTAMP",
    "airflow_run_id": "STRING",
}


def profile_table_ref(destination: TableRef) -> TableRef:
    """Where ``destination``'s profiles live: a sibling table named ``<destination>__profile``
    (``<first 200 characters>_<hash>__profile`` for a name too long to take the suffix)."""
    import hashlib

    name = destination.table
    if len(name) + len(PROFILE_SUFFIX) > _MAX_PROFILE_NAME:
        name = f"{name[:200]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return destination.sibling(f"{name}{PROFILE_SUFFIX}")


def profile_schema() -> list[bigquery.SchemaField]:
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, kind) for name, kind in PROFILE_COLUMNS.items()]


def profile_rows(
    day: dt.date, profile: DayProfile, verdict: Verdict | None, lineage: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The rows that record ``profile`` for ``day``; ``lineage`` holds model and run columns."""
    failures = [f.to_dict() for f in verdict.failures] if verdict is not None else []
    rows = []
    for column in profile.columns.values():
        stored = column.to_dict(max_categories=STORED_CATEGORIES)
        histogram = ({"bins": stored["bins"]} if column.kind == "numeric"
                     else {"categories": stored["categories"], "other": stored["other"]})
        rows.append({
            "target_date": day,
            "column_name": column.name,
            "role": column.role,
            "kind": column.kind,
            "day_rows": profile.rows,
            "nulls": column.nulls,
            "nans": column.nans,
            "value_count": column.count,
            "min": column.min,
            "max": column.max,
            "mean": column.mean if column.count and column.kind == "numeric" else None,
            "std": column.std,
            "histogram": _json(histogram),
            "verdict": verdict.outcome if verdict is not None else "pass",
            "failures": _json([f for f in failures if f["column"] in (None, column.name)]),
            "model_name": lineage["model_name"],
            "model_version": lineage["model_version"],
            "predicted_at": lineage["predicted_at"],
            "airflow_run_id": lineage["airflow_run_id"],
        })
    return rows


def _json(value: Any) -> str:
    """Compact JSON that keeps non-ASCII text as it is (``\\uXXXX`` escapes, doubled again as SQL
    literals, made a Korean word seven times longer in the transaction); DEL, the one control
    character JSON leaves raw, is escaped so the literal can hold it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).replace("\x7f", "\\u007f")


def replace_statements(table: TableRef, day: dt.date, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """SQL that makes ``table``'s ``day`` hold exactly ``rows``, for the predictions' transaction."""
    from airflow_provider_somlier.bq_sql import literal

    statements = [f"DELETE FROM {table.sql} WHERE `target_date` = {literal(day, 'DATE')};"]
    if rows:
        names = ", ".join(f"`{name}`" for name in PROFILE_COLUMNS)
        values = ",\n".join(
            "(" + ", ".join(literal(row[name], kind, field=name) for name, kind in PROFILE_COLUMNS.items()) + ")"
            for row in rows
        )
        statements.append(f"INSERT INTO {table.sql} ({names}) VALUES\n{values};")
    return statements


def column_from_row(row: Mapping[str, Any]) -> ColumnProfile:
    """A stored row back as a mergeable column profile (M2 from the stored standard deviation)."""
    histogram = json.loads(row["histogram"] or "{}")
    count = int(row["value_count"])
    std = row["std"] or 0.0
    return ColumnProfile(
        name=row["column_name"], role=row["role"], kind=row["kind"], rows=int(row["day_rows"]),
        nulls=int(row["nulls"]), nans=int(row["nans"]), count=count, min=row["min"], max=row["max"],
        mean=row["mean"] or 0.0, m2=std * std * count,
        bins={int(code): int(n) for code, n in histogram.get("bins", {}).items()},
        categories={str(k): int(n) for k, n in histogram.get("categories", {}).items()},
        other=int(histogram.get("other", 0)),
    )


def days_from_rows(rows: Sequence[Mapping[str, Any]]) -> dict[dt.date, DayProfile]:
    """Stored rows grouped back into one profile per target day."""
    days: dict[dt.date, DayProfile] = {}
    for row in rows:
        profile = days.setdefault(row["target_date"], DayProfile(rows=int(row["day_rows"])))
        profile.columns[row["column_name"]] = column_from_row(row)
    return days


def merge_days(days: Sequence[DayProfile]) -> DayProfile:
    """Several days' profiles as one baseline, column by column (a column some days lack is merged
    over the days that have it; a column whose kind changed keeps its latest days' kind).

    A stored day keeps only its top categories, the rest counted in ``other``: a category some
    day left out would be undercounted by the sum (a baseline of 60 even stores, each day's
    top 50 summed, made every normal day "drift"). The merged profile keeps the categories
    counted exactly on every day and moves the rest to ``other``.
    """
    merged = DayProfile()
    for profile in days:
        merged.rows += profile.rows
        for name, column in profile.columns.items():
            have = merged.columns.get(name)
            merged.columns[name] = column if have is None or have.kind != column.kind else have.merge(column)
    for name, column in list(merged.columns.items()):
        if column.kind != CATEGORICAL:
            continue
        partial = [p.columns[name].categories for p in days
                   if name in p.columns and p.columns[name].kind == column.kind and p.columns[name].other]
        inexact = {c for c in column.categories if any(c not in kept for kept in partial)}
        if inexact:
            merged.columns[name] = dataclasses.replace(
                column, categories={c: n for c, n in column.categories.items() if c not in inexact},
                other=column.other + sum(column.categories[c] for c in inexact),
            )
    return merged
