"""Profile tables with many days, written without scoring a row: for the pages' tests and benchmark.

Each day's profile is computed by the real profiler (``quality/profile.py``) on a synthetic
frame, judged by the real gate against the previous days (as the operator does with
``baseline="previous_days:7"``), and written with the real statements of
``quality/store.py``. A day listed in ``bad_days`` has its ``amount`` feature multiplied by
1000 (a unit change), which the gate catches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery

    from airflow_provider_somlier.quality.gate import Verdict

FEATURES = ("amount", "segment")
_STATEMENT_DAYS = 30  # days per INSERT: keeps each statement's text well under the API's limits


def day_frame(rows: int, seed: int, *, unit: float = 1.0, extra_features: int = 0) -> Any:
    """A day of features (``amount``, ``segment``, ``f0``…) and the prediction a model would give them."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0, 0.5, rows) * unit
    segment = rng.choice(np.array(["retail", "business", "premium"]), rows, p=[0.6, 0.3, 0.1])
    prediction = 0.05 * amount + rng.normal(0.0, 0.2, rows)
    extra = {f"f{i}": rng.normal(i, 1.0, rows) for i in range(extra_features)}
    return pa.table({"amount": amount, "segment": segment, **extra, "prediction": prediction})


def write_profile_days(
    client: bigquery.Client, destination_id: str, days: Sequence[dt.date], *, rows: int = 1000,
    bad_days: Collection[dt.date] = (), versions: Mapping[dt.date, int] | None = None,
    run_ids: Mapping[dt.date, str] | None = None, model_name: str = "churn", baseline_days: int = 7,
    extra_features: int = 0,
) -> dict[dt.date, Verdict]:
    """Create ``<destination>__profile`` afresh and write one profile per day; return each day's verdict."""
    from google.cloud import bigquery

    from airflow_provider_somlier.quality.drift import Baseline, compare
    from airflow_provider_somlier.quality.gate import evaluate, parse_settings
    from airflow_provider_somlier.quality.profile import FEATURE, PREDICTION, profile_table
    from airflow_provider_somlier.quality.store import (
        profile_rows,
        profile_schema,
        profile_table_ref,
        replace_statements,
    )
    from airflow_provider_somlier.refs import parse_table_ref

    table = profile_table_ref(parse_table_ref(destination_id))
    client.delete_table(table.table_id, not_found_ok=True)
    created = bigquery.Table(table.table_id, schema=profile_schema())
    created.time_partitioning = bigquery.TimePartitioning(field="target_date")
    client.create_table(created)
    settings = parse_settings(None, f"previous_days:{baseline_days}", "warn")
    roles = {"amount": FEATURE, "segment": FEATURE, **{f"f{i}": FEATURE for i in range(extra_features)},
             "prediction": PREDICTION}
    written: dict[dt.date, Any] = {}
    verdicts: dict[dt.date, Verdict] = {}
    pending: list[dict[str, Any]] = []
    for index, day in enumerate(sorted(days)):
        frame = day_frame(rows, index, unit=1000.0 if day in bad_days else 1.0, extra_features=extra_features)
        profile = profile_table(frame, roles)
        earlier = {d: written[d] for d in sorted(written)[-baseline_days:]}
        baseline = Baseline.of_days(earlier, f"previous_days:{baseline_days}") if earlier else None
        verdict = evaluate(profile, compare(profile, baseline, day) if baseline else None, settings)
        verdicts[day] = verdict
        written[day] = profile
        lineage = {
            "model_name": model_name, "model_version": (versions or {}).get(day, 1),
            "predicted_at": dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 5), dt.timezone.utc),
            "airflow_run_id": (run_ids or {}).get(day, f"scheduled__{day + dt.timedelta(days=1)}T00:00:00+00:00"),
        }
        pending.extend(profile_rows(day, profile, verdict, lineage))
    for start in range(0, len(pending), _STATEMENT_DAYS * len(roles)):
        chunk = pending[start:start + _STATEMENT_DAYS * len(roles)]
        insert = replace_statements(table, chunk[0]["target_date"], chunk)[1]
        client.query(insert).result()
    return verdicts


def register_writer(table_id: str, dag_id: str, task_id: str, bundle: str, team: str | None,
                    days: Sequence[dt.date]) -> None:
    """Record in Airflow's database what a SoMLier task leaves there after writing ``days`` of ``table_id``.

    A DAG in a bundle (owned by ``team``, for auth managers that scope DAGs by team), one
    successful run per day, and the asset event each run emitted with SoMLier's extra.
    """
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.dagrun import DagRun
    from airflow.models.team import Team
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    project, dataset, table = table_id.split(".")
    with create_session() as session:
        found = session.get(DagBundleModel, bundle) or DagBundleModel(name=bundle)
        if team is not None:
            owner = session.get(Team, team) or Team(name=team)
            session.add(owner)
            found.teams = [owner]
        session.add(found)
        session.flush()
        if session.get(DagModel, dag_id) is None:
            session.add(DagModel(dag_id=dag_id, bundle_name=bundle, fileloc=f"/dags/{dag_id}.py"))
        uri = f"bigquery://{project}/{dataset}/{table}"
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == uri))
        if asset is None:
            asset = AssetModel(uri=uri, name=uri, group="asset")
            session.add(asset)
        session.flush()
        for day in days:
            run_id = f"scheduled__{day + dt.timedelta(days=1)}T00:00:00+00:00"
            logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), dt.timezone.utc)
            session.add(DagRun(dag_id=dag_id, run_id=run_id, run_type=DagRunType.SCHEDULED, logical_date=logical,
                               state=DagRunState.SUCCESS, run_after=logical))
            session.add(AssetEvent(asset_id=asset.id, source_dag_id=dag_id, source_task_id=task_id,
                                   source_run_id=run_id, source_map_index=-1,
                                   extra={"target_date": day.isoformat(), "model_name": "churn", "model_version": "1",
                                          "rows_written": 1000}))
