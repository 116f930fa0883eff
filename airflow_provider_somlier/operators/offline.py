"""MLOpsOfflineOperator: one registry model over one day of BigQuery feature rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_somlier.links import BigQueryTableLink, MLflowModelVersionLink

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from airflow_provider_somlier.features import FeaturePlan
    from airflow_provider_somlier.hooks.bigquery import ReplaceResult, SomlierBigQueryHook
    from airflow_provider_somlier.hooks.mlflow import ResolvedModel
    from airflow_provider_somlier.output import Lineage
    from airflow_provider_somlier.refs import TableRef
    from airflow_provider_somlier.scoring import StagedPredictions

ON_EMPTY_CHOICES = ("skip", "fail", "write_empty")
# Outages (WarehouseUnavailableError, RegistryUnavailableError) are worth retrying a few
# minutes apart; input errors are AirflowFailExceptions and fail at once whatever these
# say. DAG ``default_args`` or the task's own arguments override them.
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = dt.timedelta(minutes=2)
DEFAULT_RETRY_EXPONENTIAL_BACKOFF = 2.0
DEFAULT_MAX_RETRY_DELAY = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class _RunPlan:
    """Everything one run needs once its inputs are checked, before anything is read."""

    day: dt.date
    source: TableRef
    destination: TableRef
    existing: Any  # the destination's bigquery.Table, or None before the first write
    rows_of_day: str
    resolved: ResolvedModel
    model: Any
    plan: FeaturePlan
    passthrough_types: dict[str, str]
    lineage: Lineage
    constants: dict[str, Any]
    model_seconds: float
    job_id_seed: str


class MLOpsOfflineOperator(BaseOperator):
    """Score one day of feature rows with an MLflow registry model and replace that day's predictions.

    The day is the run's logical date (in KST when ``dataset_load_by_kst``, else UTC)
    minus ``dataset_load_window`` days; the rows read are those whose
    ``dataset_load_column`` (DATE, DATETIME or TIMESTAMP) falls on it. The
    destination's partition for that day is replaced in one transaction, so reruns
    and backfills (also in parallel) leave exactly one copy of each day.

    :param model_ref: ``name/version``, ``name@alias`` or their ``models:/`` forms.
    :param dataset_ref: source table, ``[project.]dataset.table``.
    :param dataset_load_column: the source column that says which day a row belongs to.
    :param destination_table_ref: where predictions go; created on first write,
        partitioned by day on ``target_date``.
    :param dataset_load_window: days back from the run's date (>= 0).
    :param dataset_load_by_kst: take the run's date in Asia/Seoul instead of UTC.
    :param feature_columns: columns fed to the model; default: the signature's inputs.
    :param passthrough_columns: columns copied to the output unchanged (row ids).
    :param on_empty: when the day has no rows: ``skip`` the task, ``fail`` it, or
        ``write_empty`` (the day's old predictions are removed).
    :param gcp_conn_id: Google Cloud connection (the emulator is one too; see README).
    :param mlflow_conn_id: MLflow connection naming the tracking/registry URI.
    :param location: BigQuery location for jobs.
    :param chunk_rows: rows per ``predict`` call.
    :param retries: retries after an outage (the warehouse or the registry unreachable);
        default 3, ``retry_delay`` 2 minutes doubling up to ``max_retry_delay`` 30 minutes.
        Input errors fail the task at once without using them.
    :return: a summary dict (XCom): rows read and written, target date, model version, seconds.
    """

    template_fields: Sequence[str] = (
        "model_ref",
        "dataset_ref",
        "dataset_load_column",
        "destination_table_ref",
        "dataset_load_window",
        "dataset_load_by_kst",
        "feature_columns",
        "passthrough_columns",
    )
    ui_color = "#d8ecf3"
    operator_extra_links = (MLflowModelVersionLink(), BigQueryTableLink())

    def __init__(
        self,
        *,
        model_ref: str,
        dataset_ref: str,
        dataset_load_column: str,
        destination_table_ref: str,
        dataset_load_window: int | str = 1,
        dataset_load_by_kst: bool | str = True,
        feature_columns: Sequence[str] | None = None,
        passthrough_columns: Sequence[str] = (),
        on_empty: str = "skip",
        gcp_conn_id: str = "google_cloud_default",
        mlflow_conn_id: str = "mlflow_default",
        location: str | None = None,
        chunk_rows: int = 100_000,
        retries: int | None = DEFAULT_RETRIES,
        retry_delay: dt.timedelta | float = DEFAULT_RETRY_DELAY,
        retry_exponential_backoff: float = DEFAULT_RETRY_EXPONENTIAL_BACKOFF,
        max_retry_delay: dt.timedelta | float | None = DEFAULT_MAX_RETRY_DELAY,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs:  # "day D is written" (assets.py); generated DAGs spell it out
            from airflow_provider_somlier.assets import predictions_alias

            kwargs["outlets"] = [predictions_alias(destination_table_ref)]
        super().__init__(
            retries=retries,
            retry_delay=retry_delay,
            retry_exponential_backoff=retry_exponential_backoff,
            max_retry_delay=max_retry_delay,
            **kwargs,
        )
        # Parsed with every DAG file: the errors module is imported only when there is one.
        if on_empty not in ON_EMPTY_CHOICES:
            from airflow_provider_somlier.errors import InvalidArgumentError

            raise InvalidArgumentError(f"on_empty must be one of {', '.join(ON_EMPTY_CHOICES)}, got {on_empty!r}")
        if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
            from airflow_provider_somlier.errors import InvalidArgumentError

            raise InvalidArgumentError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.model_ref = model_ref
        self.dataset_ref = dataset_ref
        self.dataset_load_column = dataset_load_column
        self.destination_table_ref = destination_table_ref
        self.dataset_load_window = dataset_load_window
        self.dataset_load_by_kst = dataset_load_by_kst
        self.feature_columns = list(feature_columns) if feature_columns else None
        self.passthrough_columns = list(passthrough_columns)
        self.on_empty = on_empty
        self.gcp_conn_id = gcp_conn_id
        self.mlflow_conn_id = mlflow_conn_id
        self.location = location
        self.chunk_rows = chunk_rows
        self._bigquery: SomlierBigQueryHook | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        import tempfile
        import time

        started = time.monotonic()
        run = self._prepare(context)  # every check that can fail on input; nothing written yet
        with tempfile.TemporaryDirectory(prefix="somlier-") as workdir:
            staged = self._score(run, f"{workdir}/predictions.parquet")
            result = self._replace(run, staged)
        summary = {
            "target_date": run.day.isoformat(),
            "rows_read": staged.rows_read,
            "rows_written": result.rows_written,
            "model_name": run.resolved.name,
            "model_version": run.resolved.version,
            "model_run_id": run.resolved.run_id,
            "source": str(run.source),
            "destination": str(run.destination),
            "job_id": result.job_id,
            "seconds": round(time.monotonic() - started, 3),
            "model_seconds": round(run.model_seconds, 3),  # registry lookup + model load
        }
        self.log.info("SoMLier summary: %s", summary)
        self._announce(context, summary, run.plan)
        return summary

    def on_kill(self) -> None:
        """Cancel the BigQuery job in flight (load or transaction) when the task is killed.

        A cancelled transaction rolls back, so the day stays old (or new, had it committed).
        A staging table left behind is swept by a later run.
        """
        hook = self._bigquery
        if hook is None:
            return
        try:
            job_id = hook.cancel_running_job()
        except Exception as exc:  # noqa: BLE001 - on_kill must not raise over the kill
            self.log.warning("Could not cancel the running BigQuery job: %s", exc)
            return
        if job_id:
            self.log.info("Cancelled BigQuery job %s", job_id)

    def _prepare(self, context: Context) -> _RunPlan:
        """Resolve the model and the tables and check every input; fail before reading a row."""
        import time

        from airflow_provider_somlier.bq_sql import literal
        from airflow_provider_somlier.errors import ColumnNotFoundError
        from airflow_provider_somlier.features import plan_features, signature_inputs
        from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
        from airflow_provider_somlier.hooks.mlflow import MLflowHook
        from airflow_provider_somlier.output import (
            LINEAGE_COLUMNS,
            Lineage,
            check_passthrough,
            check_passthrough_types,
            lineage_values,
        )
        from airflow_provider_somlier.refs import parse_model_ref, parse_table_ref, validate_column_name
        from airflow_provider_somlier.window import day_filter, parse_bool, parse_window, target_date

        # Everything that can be checked without a network call.
        window_days = parse_window(self.dataset_load_window)
        by_kst = parse_bool(self.dataset_load_by_kst, field="dataset_load_by_kst")
        model_ref = parse_model_ref(self.model_ref)
        load_column = validate_column_name(self.dataset_load_column, field="dataset_load_column")
        check_passthrough(self.passthrough_columns)
        day = target_date(_run_date(context), window_days, by_kst)

        bigquery = self._bigquery = SomlierBigQueryHook(gcp_conn_id=self.gcp_conn_id, location=self.location)
        source = parse_table_ref(self.dataset_ref, bigquery.project_id, field="dataset_ref")
        destination = parse_table_ref(self.destination_table_ref, bigquery.project_id, field="destination_table_ref")
        mlflow = MLflowHook(mlflow_conn_id=self.mlflow_conn_id)
        registry_started = time.monotonic()
        resolved = mlflow.resolve(model_ref)
        model_seconds = time.monotonic() - registry_started
        source_types = {
            f.name: f"ARRAY<{f.field_type}>" if f.mode == "REPEATED" else f.field_type
            for f in bigquery.get_existing_table(source, role="source").schema
        }
        if load_column not in source_types:
            raise ColumnNotFoundError(
                f"dataset_load_column {load_column!r} not found in {source}; it has {', '.join(sorted(source_types))}"
            )
        rows_of_day = day_filter(load_column, source_types[load_column], day, by_kst)
        registry_started = time.monotonic()
        model = mlflow.load_pyfunc(resolved)
        model_seconds += time.monotonic() - registry_started
        plan = plan_features(
            source_types, signature_inputs(model), self.feature_columns, self.passthrough_columns, source=str(source)
        )
        passthrough_types = {c: source_types[c] for c in plan.passthrough}
        check_passthrough_types(passthrough_types, source=str(source))
        existing = bigquery.get_table_or_none(destination)
        if existing is None:
            bigquery.ensure_dataset_exists(destination, role="destination")

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
        return _RunPlan(
            day=day, source=source, destination=destination, existing=existing, rows_of_day=rows_of_day.sql,
            resolved=resolved, model=model, plan=plan, passthrough_types=passthrough_types, lineage=lineage,
            constants=constants, model_seconds=model_seconds,
            job_id_seed="|".join(map(str, (lineage.airflow_dag_id, self.task_id, lineage.airflow_run_id, destination, day))),
        )

    def _score(self, run: _RunPlan, path: str, batches: Iterable[pa.RecordBatch] | None = None) -> StagedPredictions:
        """Read the day (or ``batches``: one shard of it), predict chunk by chunk, stage the output as Parquet at ``path``."""
        from airflow_provider_somlier.output import check_destination
        from airflow_provider_somlier.scoring import score_to_parquet

        def check_against_destination(schema: list) -> None:
            if run.existing is not None:
                check_destination(run.existing.schema, schema, str(run.destination))

        if batches is None:
            batches = self._bigquery.read_batches(run.source, run.plan.read_columns, run.rows_of_day)
        return score_to_parquet(
            batches,
            run.model,
            run.plan,
            run.lineage,
            run.passthrough_types,
            path,
            on_schema=check_against_destination,
            chunk_rows=self.chunk_rows,
        )

    def _replace(self, run: _RunPlan, staged: StagedPredictions) -> ReplaceResult:
        """Replace the day in the destination (created on first write) with the staged rows."""
        from airflow_provider_somlier.output import TARGET_DATE_COLUMN

        schema = staged.schema
        if staged.rows_read == 0:
            schema = self._empty_day_schema(run.day, run.source, run.existing, run.passthrough_types, staged.path)
        if run.existing is None:
            self._bigquery.create_day_partitioned_table(run.destination, schema, TARGET_DATE_COLUMN)
        return self._bigquery.replace_partition(
            run.destination,
            schema,
            TARGET_DATE_COLUMN,
            run.day,
            staged.path,
            job_id_seed=run.job_id_seed,
            constants=run.constants,
        )

    def _announce(self, context: Context, summary: dict[str, Any], plan: Any) -> None:
        """Tell Airflow what the run wrote: an asset event now, the lineage when OpenLineage asks."""
        from airflow_provider_somlier.assets import emit_predictions_event
        from airflow_provider_somlier.lineage import run_lineage

        emit_predictions_event(context, self.outlets, summary)
        self._run_lineage = run_lineage(summary, plan, self.gcp_conn_id, self.location)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: feature table → model → predictions table, with schemas (see lineage.py)."""
        from airflow_provider_somlier.lineage import operator_lineage

        return operator_lineage(getattr(self, "_run_lineage", None))

    def _empty_day_schema(self, day, source, existing, passthrough_types, path) -> list:
        """Apply ``on_empty`` to a day with no rows; return the schema for an empty replace."""
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_provider_somlier.errors import EmptyWindowError
        from airflow_provider_somlier.output import output_schema
        from airflow_provider_somlier.scoring import write_empty_parquet

        if self.on_empty == "skip":
            raise AirflowSkipException(f"no rows in {source} for {day}; destination left as it was (on_empty='skip')")
        if self.on_empty == "fail":
            raise EmptyWindowError(
                f"no rows in {source} where {self.dataset_load_column} falls on {day} "
                "(on_empty='fail'); check the upstream load or the window"
            )
        import pyarrow as pa

        schema = list(existing.schema) if existing is not None else output_schema(passthrough_types, {"prediction": pa.float64()})
        write_empty_parquet(schema, path)
        self.log.info("No rows for %s: emptying the day in the destination (on_empty='write_empty')", day)
        return schema


def _run_date(context: Context) -> dt.datetime:
    """The run's logical date; runs triggered without one use their ``run_after``."""
    logical_date = context.get("logical_date")
    if logical_date is None:
        logical_date = context["dag_run"].run_after
    return logical_date
