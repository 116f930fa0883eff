"""The work of one offline task: check every input, score the day, replace it, announce it.

Kept apart from the operator's module, which every DAG file imports on every parse (in
a fresh process each time, in Airflow 3's DAG processor): the operator holds its
arguments and checks them; this module, imported when a task runs, does the rest. The
sharded operators run the same steps piece by piece.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from airflow_provider_somlier.features import FeaturePlan
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.hooks.bigquery_write import ReplaceResult
    from airflow_provider_somlier.hooks.mlflow import ResolvedModel
    from airflow_provider_somlier.operators.offline import MLOpsOfflineOperator
    from airflow_provider_somlier.output import Lineage
    from airflow_provider_somlier.refs import TableRef
    from airflow_provider_somlier.scoring import StagedPredictions


@dataclass(frozen=True)
class RunPlan:
    """Everything one run needs once its inputs are checked, before anything is read."""

    day: dt.date
    source: TableRef
    destination: TableRef
    existing: Any  # the destination's bigquery.Table, or None before the first write
    rows_of_day: str
    resolved: ResolvedModel
    model: Any  # what predicts: the pyfunc, or its scikit-learn estimator (direct_sklearn.py)
    plan: FeaturePlan
    passthrough_types: dict[str, str]
    lineage: Lineage
    constants: dict[str, Any]
    model_seconds: float
    job_id_seed: str
    gate: Any = None  # quality.day_gate.DayGate, or None when the day is not profiled
    source_type: str = "TABLE"  # a VIEW's day is copied into a table first (the Storage Read API reads tables)


class OfflineRun:
    """One execution of an offline operator (or of one sharded step) on that operator's arguments."""

    def __init__(self, operator: MLOpsOfflineOperator) -> None:
        self.operator = operator
        self.log = operator.log
        self.bigquery: SomlierBigQueryHook | None = None
        self.lineage: Any = None  # what OpenLineage is told once the day is written
        self.sweep: Any = None  # the stale-staging sweep running alongside (a Future), once prepared
        self.summary: dict[str, Any] | None = None  # the day's summary once it is written (links.py reads it)
        from airflow_provider_somlier.phases import PhaseClock

        self.clock = PhaseClock()  # where this run's time goes, phase by phase

    def execute(self, context: Context) -> dict[str, Any]:
        """The single task: prepare, score the whole day, replace it, announce it; returns the summary."""
        import tempfile
        import time

        started = time.monotonic()
        try:
            run = self.prepare(context, sweep=True)  # every check that can fail on input; nothing written yet
            with tempfile.TemporaryDirectory(prefix="somlier-") as workdir:
                staged = self.score(run, f"{workdir}/predictions.parquet")
                verdict = self.judge(run, staged)  # a failing day stops here: nothing staged in BigQuery yet
                result = self.replace(run, staged, verdict)
        except BaseException:  # a slow failed day is where a user most wants to see where the time went
            self.log.info("SoMLier phases until the failure: %s", self.clock.line() or "none")
            raise
        quality = None
        if run.gate is not None:
            from airflow_provider_somlier.quality.day_gate import quality_summary

            quality = quality_summary(staged.profile, verdict, run.gate.baseline)
        summary = day_summary(
            target_date=run.day,
            rows_read=staged.rows_read,
            rows_written=result.rows_written,
            model_name=run.resolved.name,
            model_version=run.resolved.version,
            model_run_id=run.resolved.run_id,
            source=run.source,
            destination=run.destination,
            job_id=result.job_id,
            started=started,
            model_seconds=round(run.model_seconds, 3),  # registry lookup + model load
            **({"quality": quality} if quality is not None else {}),
        )
        self.announce(context, summary, run.plan.features, run.plan.passthrough)
        return self.finish(summary)

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The summary with the run's phase timings (XCom and log; the asset extra leaves them out)."""
        self.collect_sweep()
        summary = self.summary = {**summary, "phases": self.clock.as_dict()}
        self.log.info("SoMLier phases: %s", self.clock.line())
        self.log.info("SoMLier summary: %s", summary)
        return summary

    def collect_sweep(self) -> None:
        """Wait for the stale-staging sweep started in prepare(); its failure is only logged (the
        day is written; the next run sweeps again)."""
        sweep, self.sweep = self.sweep, None
        if sweep is None:
            return
        try:
            sweep.result()
        except Exception as exc:  # noqa: BLE001 - housekeeping: never fails a written day
            self.log.warning("Could not sweep stale staging tables (the next run tries again): %s", exc)

    def prepare(self, context: Context, *, sweep: bool = False) -> RunPlan:
        """Resolve the model and the tables and check every input; fail before reading a row.

        ``sweep``: a run that will write the day also starts the sweep of its destination's
        stale staging tables here, on a thread, so its dataset listing overlaps the scoring.
        """
        import time

        from airflow_provider_somlier.bq_sql import literal
        from airflow_provider_somlier.errors import ColumnNotFoundError
        from airflow_provider_somlier.features import missing_allowed, plan_features, signature_inputs, signature_kind
        from airflow_provider_somlier.hooks.mlflow import MLflowHook
        from airflow_provider_somlier.output import (
            LINEAGE_COLUMNS,
            Lineage,
            check_passthrough,
            check_passthrough_types,
            lineage_values,
        )
        from airflow_provider_somlier.refs import column_list, parse_model_ref, parse_table_ref, validate_column_name
        from airflow_provider_somlier.window import day_filter, parse_bool, parse_window, target_date

        op = self.operator
        prepare_started = time.monotonic()
        # Everything that can be checked without a network call.
        op.feature_columns = column_list(op.feature_columns, field="feature_columns", rendered=True) or None
        op.passthrough_columns = column_list(op.passthrough_columns, field="passthrough_columns", rendered=True) or []
        window_days = parse_window(op.dataset_load_window)
        by_kst = parse_bool(op.dataset_load_by_kst, field="dataset_load_by_kst")
        model_ref = parse_model_ref(op.model_ref)
        load_column = validate_column_name(op.dataset_load_column, field="dataset_load_column")
        check_passthrough(op.passthrough_columns)
        day = target_date(run_date(context), window_days, by_kst)

        bigquery = self.bigquery = op.bigquery_hook()
        source = parse_table_ref(op.dataset_ref, bigquery.project_id, field="dataset_ref")
        destination = parse_table_ref(op.destination_table_ref, bigquery.project_id, field="destination_table_ref")
        mlflow = MLflowHook(mlflow_conn_id=op.mlflow_conn_id)
        with self.clock.timing("registry"):
            resolved = mlflow.resolve(model_ref)
        source_table = bigquery.get_existing_table(source, role="source")
        source_types = {
            f.name: f"ARRAY<{f.field_type}>" if f.mode == "REPEATED" else f.field_type for f in source_table.schema
        }
        if load_column not in source_types:
            raise ColumnNotFoundError(
                f"dataset_load_column {load_column!r} not found in {source}; it has {', '.join(sorted(source_types))}"
            )
        rows_of_day = day_filter(load_column, source_types[load_column], day, by_kst)
        with self.clock.timing("model_load"):
            model = mlflow.load_pyfunc(resolved)
        model_seconds = self.clock.seconds("registry") + self.clock.seconds("model_load")
        plan = plan_features(
            source_types, signature_inputs(model), op.feature_columns, op.passthrough_columns, source=str(source),
            signature_described=signature_kind(model),
        )
        if missing_allowed(op.null_features, model):
            plan = dataclasses.replace(plan, missing_allowed=True)
            self.log.info("NULL/NaN features go to the model as NaN (null_features=%r)", op.null_features)
        passthrough_types = {c: source_types[c] for c in plan.passthrough}
        # The estimator itself (or a linear model's expression) where MLflow's per-chunk input
        # check adds nothing to the operator's own
        from airflow_provider_somlier.direct_sklearn import direct_predictor

        predictor = direct_predictor(model, plan.features, missing_allowed=plan.missing_allowed) or model
        check_passthrough_types(passthrough_types, source=str(source))
        existing = bigquery.get_table_or_none(destination)
        if existing is None:
            bigquery.ensure_dataset_exists(destination, role="destination")
        if sweep:
            from airflow_provider_somlier.background import in_background

            # Housekeeping nothing waits on: the sweep's dataset listing runs while the day is scored.
            self.sweep = in_background("sweep", bigquery.sweep_stale_staging, destination)
        from airflow_provider_somlier.quality.day_gate import prepare_gate

        gate = prepare_gate(op, bigquery, destination, day, plan.features, resolved.run_id, self.log)

        lineage = Lineage(
            model_name=resolved.name,
            model_version=int(resolved.version),
            model_run_id=resolved.run_id,
            target_date=day,
            predicted_at=dt.datetime.now(dt.timezone.utc),
            airflow_dag_id=context["ti"].dag_id,
            airflow_run_id=context["run_id"],
        )
        constants = lineage_values(lineage)
        for name, value in constants.items():  # refuse lineage that cannot be written before reading a row
            literal(value, LINEAGE_COLUMNS[name], field=name)
        self.log.info(
            "Scoring %s (version %s) on %s rows where %s -> %s",
            resolved.requested, resolved.version, source, rows_of_day.sql, destination,
        )
        self.clock.add("checks", time.monotonic() - prepare_started - model_seconds)
        return RunPlan(
            day=day, source=source, destination=destination, existing=existing, rows_of_day=rows_of_day.sql,
            resolved=resolved, model=predictor, plan=plan, passthrough_types=passthrough_types, lineage=lineage,
            constants=constants, model_seconds=model_seconds, gate=gate, source_type=source_table.table_type or "TABLE",
            job_id_seed="|".join(
                map(str, (lineage.airflow_dag_id, op.task_id, lineage.airflow_run_id, destination, day))
            ),
        )

    def score(self, run: RunPlan, path: str, batches: Iterable[pa.RecordBatch] | None = None) -> StagedPredictions:
        """Read the day (or ``batches``: one shard of it), predict chunk by chunk, stage as Parquet at ``path``."""
        from airflow_provider_somlier.output import check_destination
        from airflow_provider_somlier.scoring import score_to_parquet

        def check_against_destination(schema: list) -> None:
            if run.existing is not None:
                check_destination(run.existing.schema, schema, str(run.destination))

        profiler = None
        if run.gate is not None:
            from airflow_provider_somlier.quality.day_gate import ScoringProfiler

            profiler = ScoringProfiler(run.plan.features)
        copy = None
        try:
            if batches is None:
                with self.clock.timing("read"):  # the read session: the warehouse plans the read here
                    read_from, restriction, copy = self.readable_day(run, uuid.uuid4().hex[:12])
                    batches = self.bigquery.read_batches(read_from, run.plan.read_columns, restriction)
            return score_to_parquet(
                batches,
                run.model,
                run.plan,
                run.lineage,
                run.passthrough_types,
                path,
                on_schema=check_against_destination,
                chunk_rows=self.operator.chunk_rows,
                profiler=profiler,
                clock=self.clock,
            )
        finally:
            if copy is not None:
                self.drop_read_copy(copy)

    def readable_day(self, run: RunPlan, seed: str) -> tuple[TableRef, str, TableRef | None]:
        """Where the day's rows are read from: (table, row restriction, the copy to drop afterwards or None).

        A table is read directly with the day's filter. The Storage Read API reads no views
        (nor materialized views, nor external tables): their day's rows are first copied, by
        one query, into a staging table of the destination named from ``seed``.
        """
        from airflow_provider_somlier.hooks.bigquery_staging import NOT_READ_DIRECTLY, read_copy_table_name

        if run.source_type not in NOT_READ_DIRECTLY:
            return run.source, run.rows_of_day, None
        copy = run.destination.sibling(read_copy_table_name(run.destination.table, run.day, seed))
        self.log.info("%s is a %s, which the Storage Read API cannot read: copying its day's rows into %s",
                      run.source, run.source_type, copy)
        self.bigquery.copy_rows_for_read(run.source, run.source_type, run.plan.read_columns, run.rows_of_day, copy)
        return copy, "", copy

    def drop_read_copy(self, copy: TableRef) -> None:
        """Drop the copy of a view's day once it is read; a failure is only logged (the sweep drops it later)."""
        try:
            self.bigquery.drop_tables([copy])
        except Exception as exc:  # noqa: BLE001 - housekeeping: never replaces the run's own outcome
            self.log.warning("Could not drop %s (a later run sweeps it): %s", copy, exc)

    def judge(self, run: RunPlan, staged: StagedPredictions) -> Any:
        """The quality verdict on the scored day (None when not profiled or empty); fails the run by name
        when a check fails and ``on_quality_failure='fail'``."""
        if run.gate is None or not staged.rows_read:
            return None
        with self.clock.timing("profile"):
            return run.gate.judge(staged.profile)

    def replace(self, run: RunPlan, staged: StagedPredictions, verdict: Any = None) -> ReplaceResult:
        """Replace the day in the destination (created on first write) with the staged rows, and its
        profile in the profile table in the same transaction."""
        from airflow_provider_somlier.output import TARGET_DATE_COLUMN

        schema = staged.schema
        if staged.rows_read == 0:
            schema = self.empty_day_schema(run.day, run.source, run.existing, run.passthrough_types, staged.path)
        if run.existing is None:
            with self.clock.timing("checks"):
                self.bigquery.create_day_partitioned_table(run.destination, schema, TARGET_DATE_COLUMN)
        return self.bigquery.replace_partition(
            run.destination,
            schema,
            TARGET_DATE_COLUMN,
            run.day,
            staged.path,
            job_id_seed=run.job_id_seed,
            constants=run.constants,
            also=self.profile_statements(run, staged.profile, verdict),
            clock=self.clock,
            sweep=False,  # prepare() started it alongside; finish() collects it
        )

    def profile_statements(self, run: RunPlan, profile: Any, verdict: Any) -> list[str]:
        """The profile table's part of the day's transaction (nothing when the day is not profiled)."""
        if run.gate is None:
            return []
        from airflow_provider_somlier.quality.profile import DayProfile

        with self.clock.timing("profile"):
            return run.gate.statements(self.bigquery, run.day, profile or DayProfile(), verdict, run.constants)

    def announce(
        self, context: Context, summary: dict[str, Any], features: Sequence[str], passthrough: Sequence[str]
    ) -> None:
        """Tell Airflow what the run wrote: an asset event now, the lineage when OpenLineage asks.

        The single task and the sharded commit both call it with a :func:`day_summary`, so a
        day announces itself the same way however many tasks scored it.
        """
        from airflow_provider_somlier.assets import emit_predictions_event
        from airflow_provider_somlier.lineage import run_lineage

        with self.clock.timing("announce"):
            emit_predictions_event(context, self.operator.outlets, summary)
            self.lineage = run_lineage(
                summary, features, passthrough, self.operator.gcp_conn_id, self.operator.location
            )

    def note_read(self, run: RunPlan) -> None:
        """For a step that reads the day but writes no day of its own (a shard's plan or score):
        its lineage is the feature table it read and the model, no output."""
        from airflow_provider_somlier.lineage import RunLineage

        op = self.operator
        self.lineage = RunLineage(
            source=str(run.source), destination=None, features=tuple(run.plan.features),
            passthrough=tuple(run.plan.passthrough), model_name=run.resolved.name,
            model_version=str(run.resolved.version), model_run_id=run.resolved.run_id,
            gcp_conn_id=op.gcp_conn_id, location=op.location,
        )

    def empty_day_schema(
        self, day: dt.date, source: TableRef, existing: Any, passthrough_types: dict[str, str], path: str
    ) -> list:
        """Apply ``on_empty`` to a day with no rows; return the schema for an empty replace."""
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_provider_somlier.errors import EmptyWindowError
        from airflow_provider_somlier.output import output_schema
        from airflow_provider_somlier.scoring import write_empty_parquet

        if self.operator.on_empty == "skip":
            raise AirflowSkipException(f"no rows in {source} for {day}; destination left as it was (on_empty='skip')")
        if self.operator.on_empty == "fail":
            raise EmptyWindowError(
                f"no rows in {source} where {self.operator.dataset_load_column} falls on {day} "
                "(on_empty='fail'); check the upstream load or the window"
            )
        import pyarrow as pa

        if existing is not None:
            schema = list(existing.schema)
        else:
            schema = output_schema(passthrough_types, {"prediction": pa.float64()})
        write_empty_parquet(schema, path)
        self.log.info("No rows for %s: emptying the day in the destination (on_empty='write_empty')", day)
        return schema


def day_summary(
    *,
    target_date: dt.date,
    rows_read: int,
    rows_written: int,
    model_name: str,
    model_version: str | int,
    model_run_id: str,
    source: Any,
    destination: Any,
    job_id: str | None,
    started: float,
    **extra: Any,
) -> dict[str, Any]:
    """The summary of a written day (XCom, log, asset extra, links, lineage), one shape for every operator.

    ``model_version`` is a string, as MLflow's client gives it, whichever task wrote the
    day: a downstream DAG compares it one way. ``started`` is a ``time.monotonic()``
    reading; ``extra`` keys (``shards``, ``model_seconds``) follow the common ones.
    """
    import time

    return {
        "target_date": target_date.isoformat(),
        "rows_read": rows_read,
        "rows_written": rows_written,
        "model_name": model_name,
        "model_version": str(model_version),
        "model_run_id": model_run_id,
        "source": str(source),
        "destination": str(destination),
        "job_id": job_id,
        "seconds": round(time.monotonic() - started, 3),
        **extra,
    }


def run_date(context: Context) -> dt.datetime:
    """The run's logical date; runs triggered without one use their ``run_after``."""
    logical_date = context.get("logical_date")
    if logical_date is None:
        logical_date = context["dag_run"].run_after
    return logical_date
