"""MLOpsOfflineOperator: one registry model over one day of BigQuery feature rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.offline_run import OfflineRun

ON_EMPTY_CHOICES = ("skip", "fail", "write_empty")
NULL_FEATURES_CHOICES = ("auto", "refuse", "pass")  # features.missing_allowed
# Outages (WarehouseUnavailableError, RegistryUnavailableError) are worth retrying a few
# minutes apart; input errors are AirflowFailExceptions and fail at once whatever these
# say. DAG ``default_args`` or the task's own arguments override them.
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = dt.timedelta(minutes=2)
DEFAULT_RETRY_EXPONENTIAL_BACKOFF = 2.0
DEFAULT_MAX_RETRY_DELAY = dt.timedelta(minutes=30)


class _LinksOnFirstUse:
    """``operator_extra_links`` made on first access, on the class or on an operator.

    The link classes subclass ``BaseOperatorLink``, whose module the DAG processor has not
    imported when it forks the process that parses a DAG file: defining them with the
    operator would cost every parse of every generated file about 2 ms, as much as the
    rest of this module. Airflow reads the links when it serializes a DAG, after the
    parse (on the class for mapped tasks, hence a descriptor rather than a property).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._owner, self._name = owner, name

    def __get__(self, operator: Any, owner: type | None = None) -> tuple:
        from airflow_provider_somlier.links import BigQueryTableLink, MLflowModelVersionLink

        links = (MLflowModelVersionLink(), BigQueryTableLink())
        setattr(self._owner, self._name, links)  # later lookups find the tuple itself
        return links


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
    :param null_features: a NULL or NaN feature on the day: ``auto`` (default) sends it to
        the model as NaN when the model declares it handles missing values (a scikit-learn
        model whose every step has the ``allow_nan`` tag, e.g. ``HistGradientBoosting*``)
        and refuses the day by name otherwise; ``pass`` always sends NaN; ``refuse`` never.
        Sent NULLs are bounded by the quality gate's ``max_null_fraction`` (with
        ``quality_profile`` on, the default).
    :param gcp_conn_id: Google Cloud connection (the emulator is one too; see README).
    :param mlflow_conn_id: MLflow connection naming the tracking/registry URI.
    :param location: BigQuery location for jobs.
    :param chunk_rows: rows per ``predict`` call.
    :param quality_profile: profile every feature and prediction column while scoring and keep
        the profile in ``<destination>__profile``, replaced with the day; the gate below needs it.
    :param quality_checks: thresholds of the quality gate, by check name (``max_null_fraction``,
        ``max_psi``, ``max_mean_shift``, each with a ``..._per_column`` mapping, ``prediction_range``,
        ``row_count_factor``; see ``quality/gate.py``); omitted checks keep their defaults, ``None``
        turns one off.
    :param baseline: what drift is measured against: ``previous_days:N`` (the profiles of the
        destination's latest N earlier days), ``training`` (the profile logged with the model
        version's run by ``log_training_profile``) or ``none``.
    :param on_quality_failure: ``fail`` (the day keeps its old rows) or ``warn`` (write, record
        the failures with the profile and in the summary).
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
        "quality_checks",
        "baseline",
        "on_quality_failure",
    )
    ui_color = "#d8ecf3"
    operator_extra_links = _LinksOnFirstUse()  # links.py

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
        null_features: str = "auto",
        gcp_conn_id: str = "google_cloud_default",
        mlflow_conn_id: str = "mlflow_default",
        location: str | None = None,
        chunk_rows: int = 100_000,
        quality_profile: bool = True,
        quality_checks: Mapping[str, Any] | str | None = None,
        baseline: str = "previous_days:7",
        on_quality_failure: str = "fail",
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
        if null_features not in NULL_FEATURES_CHOICES:
            from airflow_provider_somlier.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"null_features must be one of {', '.join(NULL_FEATURES_CHOICES)}, got {null_features!r}"
            )
        if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
            from airflow_provider_somlier.errors import InvalidArgumentError

            raise InvalidArgumentError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.model_ref = model_ref
        self.dataset_ref = dataset_ref
        self.dataset_load_column = dataset_load_column
        self.destination_table_ref = destination_table_ref
        self.dataset_load_window = dataset_load_window
        self.dataset_load_by_kst = dataset_load_by_kst
        self.feature_columns = _columns(feature_columns, "feature_columns") or None
        self.passthrough_columns = _columns(passthrough_columns, "passthrough_columns") or []
        self.on_empty = on_empty
        self.null_features = null_features
        self.gcp_conn_id = gcp_conn_id
        self.mlflow_conn_id = mlflow_conn_id
        self.location = location
        self.chunk_rows = chunk_rows
        self.quality_profile = bool(quality_profile)
        self.quality_checks = quality_checks
        self.baseline = baseline
        self.on_quality_failure = on_quality_failure
        if (quality_checks, baseline, on_quality_failure) != (None, "previous_days:7", "fail") and not any(
            "{{" in value for value in (quality_checks, baseline, on_quality_failure) if isinstance(value, str)
        ):  # literal settings are refused when the DAG file is parsed; templated ones before a row is read
            from airflow_provider_somlier.quality.gate import parse_settings

            parse_settings(quality_checks, baseline, on_quality_failure)
        self._bigquery: SomlierBigQueryHook | None = None  # for on_kill
        self._run: OfflineRun | None = None  # for OpenLineage, once the run is done

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_somlier.offline_run import OfflineRun

        self._run = OfflineRun(self)
        return self._run.execute(context)

    def bigquery_hook(self) -> SomlierBigQueryHook:
        """A hook for this execution, kept so that ``on_kill`` can cancel the job it has in flight."""
        from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

        self._bigquery = SomlierBigQueryHook(gcp_conn_id=self.gcp_conn_id, location=self.location)
        return self._bigquery

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

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: feature table → model → predictions table, with schemas (see lineage.py)."""
        from airflow_provider_somlier.lineage import operator_lineage

        return operator_lineage(self._run.lineage if self._run is not None else None)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """OpenLineage of a failed run: what it had resolved, without reading any schema.

        The warehouse may be why the task failed; asking it for schemas then would hold the
        worker slot for another deadline per table.
        """
        from airflow_provider_somlier.lineage import operator_lineage

        return operator_lineage(self._run.lineage if self._run is not None else None, read_schemas=False)


def _columns(value: Any, field: str) -> list[str] | str | None:
    """A list of names as given (the common case, checked without imports), else ``refs.column_list``."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(name, str) for name in value):
        return list(value)
    from airflow_provider_somlier.refs import column_list

    return column_list(value, field=field)
