"""The predictions table as an Airflow asset, so that downstream DAGs can wait for a day.

The asset is the destination table under the URI Airflow's Google provider gives a
BigQuery table (``bigquery://<project>/<dataset>/<table>``, see
``airflow.providers.google.assets.bigquery``): a DAG scheduled on that asset runs when
SoMLier has written a day, and a DAG already scheduled on the Google operators' asset for
the same table needs no change. The project is often known only at run time (from the
connection), so a task declares an :class:`~airflow.sdk.AssetAlias` named after its
destination ref as its outlet, and each successful run attaches one event for the
resolved table to it, with the target day, the model and the row count as its extra.

Imported by DAG files (through the operator): only ``airflow.sdk`` at module level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from airflow.sdk import Context

ALIAS_PREFIX = "somlier-predictions:"
EXTRA_KEYS = ("target_date", "model_name", "model_version", "rows_written")


def predictions_alias(destination_table_ref: str) -> AssetAlias:
    """The outlet a task writing ``destination_table_ref`` declares (the ref as written in the DAG)."""
    return AssetAlias(name=f"{ALIAS_PREFIX}{destination_table_ref}")


def table_asset(project: str, dataset: str, table: str) -> Asset:
    """A BigQuery table as the Google provider names it, so both providers' events meet on one asset."""
    return Asset(uri=f"bigquery://{project}/{dataset}/{table}")


def emit_predictions_event(context: Context, outlets: Iterable[Any], summary: Mapping[str, Any]) -> Asset | None:
    """Attach "day D is written" to every predictions alias among ``outlets``; return the asset.

    ``summary`` is the run's summary (its ``destination`` is ``project.dataset.table``).
    Also fills the extra of the table's own asset when a DAG declared it directly. Returns
    ``None`` (and emits nothing) when the task declares neither, or when it runs outside
    an Airflow task (a context without ``outlet_events``, as in a direct ``execute`` call).
    """
    outlet_events = context.get("outlet_events")
    if outlet_events is None:
        return None
    asset = table_asset(*summary["destination"].split("."))
    extra = {key: summary[key] for key in EXTRA_KEYS}
    if summary.get("quality") is not None:  # rows, NULLs per column, the checks' verdict and failures
        extra["quality"] = summary["quality"]
    emitted = False
    for outlet in outlets:
        if isinstance(outlet, AssetAlias) and outlet.name.startswith(ALIAS_PREFIX):
            outlet_events[outlet].add(asset, extra=extra)
            emitted = True
        elif isinstance(outlet, Asset) and outlet.uri == asset.uri:
            outlet_events[outlet].extra.update(extra)
            emitted = True
    return asset if emitted else None
