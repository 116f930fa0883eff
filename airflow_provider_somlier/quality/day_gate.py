"""The gate's steps inside a run: profile while scoring, judge before the commit, record with the day.

Used by the single task (``offline_run.OfflineRun``) and by the sharded group (each shard
profiles its rows; the commit merges the shards' profiles and judges them), so both
report the same way from the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.quality.profile import FEATURE, PREDICTION, DayProfile

if TYPE_CHECKING:
    import logging

    import pyarrow as pa

    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.quality.drift import Baseline
    from airflow_provider_somlier.quality.gate import QualitySettings, Verdict
    from airflow_provider_somlier.refs import TableRef

TRAINING_PROFILE_PATH = "somlier/training_profile.json"


class ScoringProfiler:
    """Feeds a day profile from each chunk the scoring loop has just predicted (no second read)."""

    def __init__(self, features: Sequence[str]) -> None:
        self.features = tuple(features)
        self.profile: DayProfile | None = None

    def add(self, chunk: pa.RecordBatch, predictions: Mapping[str, pa.Array]) -> None:
        if self.profile is None:
            roles = {name: (FEATURE, chunk.schema.field(name).type) for name in self.features}
            roles.update({name: (PREDICTION, values.type) for name, values in predictions.items()})
            self.profile = DayProfile.for_schema(roles)
        columns: dict[str, Any] = {name: chunk.column(name) for name in self.features}
        columns.update(predictions)
        self.profile.add(chunk.num_rows, columns)

    def result(self) -> DayProfile:
        return self.profile if self.profile is not None else DayProfile()


class DayGate:
    """A run's quality settings, its baseline (None before there is one) and where profiles are kept.

    A baseline of earlier days is read on a thread while the day is scored (its query would
    otherwise add its round trip to every run); :attr:`baseline` waits for it, and an error
    reading it is raised there, before the commit. A training baseline is read at once, so
    a profile of another model's columns is refused before a row is read.
    """

    def __init__(self, settings: QualitySettings, baseline: Baseline | None, table: TableRef, table_exists: bool,
                 log: logging.Logger, pending: Any = None, day: dt.date | None = None,
                 destination: TableRef | None = None) -> None:
        self.settings = settings
        self.day = day  # the target date judged (its weekday picks the row-count reference)
        self.destination = destination
        self._baseline = baseline
        self._pending = pending  # a concurrent.futures.Future of the baseline, or None
        self.table = table
        self.table_exists = table_exists
        self.log = log

    @property
    def baseline(self) -> Baseline | None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._baseline = pending.result()
            if self._baseline is None and self.settings.baseline == "training":
                self.log.warning("baseline='training', but the model's run logged no training profile (%s): drift "
                                 "checks are skipped; log one with log_training_profile or register with "
                                 "--training_data", TRAINING_PROFILE_PATH)
            elif self._baseline is None and self.settings.baseline != "none":
                self.log.info("No baseline yet for %s (%s): this day's profile is written and drift checks are "
                              "skipped", self.table, self.settings.baseline)
            elif self._baseline is not None:
                self.log.info("Quality baseline: %s", self._baseline.source)
        return self._baseline

    def judge(self, profile: DayProfile) -> Verdict:
        """The verdict on ``profile``; raises :class:`QualityCheckError` when it fails and ``fail`` is asked for."""
        from airflow_provider_somlier.quality.drift import compare
        from airflow_provider_somlier.quality.gate import evaluate

        drift = compare(profile, self.baseline, self.day) if self.baseline is not None else None
        verdict = evaluate(profile, drift, self.settings)
        for check, why in verdict.skipped.items():
            self.log.info("Quality check %s skipped: %s", check, why)
        if verdict.outcome == "fail":
            from airflow_provider_somlier.errors import QualityCheckError

            where = " ".join(str(part) for part in (self.destination, self.day) if part is not None)
            raise QualityCheckError(
                f"{where + ': ' if where else ''}{verdict.message()} (baseline: {drift.baseline if drift else 'none'}); "
                "the day keeps its old rows "
                "and nothing was written. Fix the upstream data, or set on_quality_failure='warn' or adjust "
                "quality_checks if the change is expected",
                failures=[f.to_dict() for f in verdict.failures],
            )
        if verdict.outcome == "warn":
            self.log.warning("%s; writing the day anyway (on_quality_failure='warn')", verdict.message())
        else:
            self.log.info("Quality: %d check(s) passed against %s", len(verdict.results),
                          drift.baseline if drift else "no baseline")
        return verdict

    def statements(self, hook: SomlierBigQueryHook, day: dt.date, profile: DayProfile, verdict: Verdict | None,
                   lineage: Mapping[str, Any]) -> list[str]:
        """The SQL that replaces the day's profile inside the predictions' transaction (table made if new)."""
        from airflow_provider_somlier.quality.store import profile_rows, profile_schema, replace_statements

        if not self.table_exists:
            hook.create_day_partitioned_table(
                self.table, profile_schema(), "target_date",
                description="SoMLier's profile of each scored day: one row per target day and column.",
            )
            self.table_exists = True
        return replace_statements(self.table, day, profile_rows(day, profile, verdict, lineage))


def quality_summary(profile: DayProfile, verdict: Verdict | None, baseline: Baseline | None) -> dict[str, Any]:
    """What the summary, the asset event and OpenLineage say about the day's quality."""
    summary: dict[str, Any] = {
        "rows": profile.rows,
        "nulls": {name: column.nulls + column.nans for name, column in profile.columns.items()},
        "baseline": baseline.source if baseline is not None else None,
    }
    if verdict is not None:
        summary.update(verdict.to_dict())
    return summary


def prepare_gate(
    operator: Any, hook: SomlierBigQueryHook, destination: TableRef, day: dt.date, features: Sequence[str],
    model_run_id: str, log: logging.Logger,
) -> DayGate | None:
    """Parse the operator's quality settings and load the baseline, before a row is read (None: profiling off)."""
    from airflow_provider_somlier.quality.gate import parse_settings
    from airflow_provider_somlier.quality.store import profile_table_ref

    if not operator.quality_profile:
        return None
    settings = parse_settings(operator.quality_checks, operator.baseline, operator.on_quality_failure)
    settings.check_columns(features, where="the model's feature list")
    table = profile_table_ref(destination)
    exists = hook.get_table_or_none(table) is not None
    if not getattr(operator, "loads_quality_baseline", True):
        return DayGate(settings=settings, baseline=None, table=table, table_exists=exists, log=log, day=day,
                       destination=destination)
    def load() -> Baseline | None:
        return load_baseline(settings, hook, table, exists, day, features, operator.mlflow_conn_id, model_run_id)

    if settings.baseline_days is not None and exists:
        from airflow_provider_somlier.background import in_background

        pending = in_background("baseline", load)
        return DayGate(settings=settings, baseline=None, table=table, table_exists=exists, log=log, pending=pending,
                       day=day, destination=destination)
    gate = DayGate(settings=settings, baseline=None, table=table, table_exists=exists, log=log, pending=_Done(load()),
                   day=day, destination=destination)
    gate.baseline  # logs what it found
    return gate


class _Done:
    """A finished future (the baseline read at once)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


def load_baseline(
    settings: QualitySettings, hook: SomlierBigQueryHook, table: TableRef, exists: bool, day: dt.date,
    features: Sequence[str], mlflow_conn_id: str, model_run_id: str,
) -> Baseline | None:
    """The baseline the settings name, or None when there is none yet."""
    from airflow_provider_somlier.quality.drift import Baseline
    from airflow_provider_somlier.quality.store import days_from_rows

    days = settings.baseline_days
    if days is not None:
        if not exists:
            return None
        by_day = days_from_rows(hook.rows_of_latest_days(table, "target_date", day, days))
        if not by_day:
            return None
        first, last = min(by_day), max(by_day)
        return Baseline.of_days(
            by_day, f"{settings.baseline} ({len(by_day)} day(s), {first.isoformat()} to {last.isoformat()})"
        )
    if settings.baseline == "training":
        from airflow_provider_somlier.hooks.mlflow import MLflowHook

        data = MLflowHook(mlflow_conn_id=mlflow_conn_id).load_run_json(model_run_id, TRAINING_PROFILE_PATH)
        if data is None:
            return None
        profile = DayProfile.from_dict(data)
        check_training_columns(profile, features, model_run_id)
        return Baseline(profile=profile, source=f"training profile of run {model_run_id}")
    return None


def check_training_columns(profile: DayProfile, features: Sequence[str], run_id: str) -> None:
    """A training profile must describe this model's features; another model's is refused by name."""
    missing = [name for name in features if name not in profile.columns]
    if missing:
        from airflow_provider_somlier.errors import ProfileMismatchError

        raise ProfileMismatchError(
            f"the training profile of run {run_id} has no column(s) {', '.join(map(repr, missing))} of the model's "
            f"features (it profiles {', '.join(map(repr, profile.columns))}); it was logged for another model: "
            "log this model's training frame with log_training_profile"
        )


def judge_shards(
    operator: Any, hook: SomlierBigQueryHook, destination: TableRef, day: dt.date,
    shard_profiles: Sequence[Mapping[str, Any] | None], model_run_id: str, log: logging.Logger,
) -> tuple[DayGate | None, DayProfile | None, Verdict | None]:
    """The sharded commit's gate: merge the shards' profiles (exactly) and judge the day as one task would."""
    from airflow_provider_somlier.quality.profile import merge_all

    profiles = [DayProfile.from_dict(p) for p in shard_profiles if p is not None]
    if not operator.quality_profile or not profiles:
        return None, None, None
    profile = merge_all(profiles)
    features = [name for name, column in profile.columns.items() if column.role == FEATURE]
    gate = prepare_gate(operator, hook, destination, day, features, model_run_id, log)
    return gate, profile, gate.judge(profile) if gate is not None else None
