"""One day scored by N Airflow workers: plan → N mapped score tasks → one commit.

The single-task :class:`MLOpsOfflineOperator` is the one-shard case of the same three
steps, and these operators are built from its pieces (``offline_run.OfflineRun``): every
check is its ``prepare``, every shard scores through its ``score``, and the commit runs
the hook's ``commit_staged`` transaction that its replace runs. What sharding adds:

* **plan** resolves the model ref once and pins ``name/version`` for the shards,
  counts the day's source rows and opens one Storage Read session split into N
  streams; its lineage (version, run, ``predicted_at``) is the one every row gets;
* **score** (mapped, one task per stream) reads its stream, scores it and loads its
  rows into its own staging table, named from the plan and the shard index, so a
  retry replaces the table instead of adding a copy;
* **commit** checks each staging table against what its shard reported and their
  sum against the plan's source count, then replaces the day from all of them in one
  transaction and drops them.

Until the commit the destination is untouched: a failed or killed shard leaves the
day as it was. A retried shard reads the same stream again from its start; if the
session has expired it fails with :class:`ReadSessionExpiredError` (clear the group)
rather than reading another session's split.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.errors import InvalidArgumentError, ShardCountMismatchError, ShardedRunError
from airflow_provider_somlier.operators.offline import (
    DEFAULT_MAX_RETRY_DELAY,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_DELAY,
    DEFAULT_RETRY_EXPONENTIAL_BACKOFF,
    MLOpsOfflineOperator,
)

if TYPE_CHECKING:
    from airflow.sdk import Context, TaskGroup

MAX_SHARDS = 1000
PLAN_XCOM_KEY = "plan"


class MLOpsShardPlanOperator(MLOpsOfflineOperator):
    """Check every input, pin the model version, count the day and split it into ``shards`` read streams.

    Returns the list of shards (one per stream; the score task is mapped over it) and
    pushes the plan under the XCom key ``plan``. A day with no rows is handled here as
    the single task handles it (``on_empty``), and maps no shards.
    """

    def __init__(self, *, shards: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= MAX_SHARDS:
            raise InvalidArgumentError(f"shards must be an integer from 1 to {MAX_SHARDS}, got {shards!r}")
        self.shards = shards

    def execute(self, context: Context) -> list[dict[str, Any]]:
        import base64
        import tempfile

        from airflow_provider_somlier.offline_run import OfflineRun
        from airflow_provider_somlier.scoring import StagedPredictions

        steps = self._run = OfflineRun(self)
        run = steps.prepare(context)
        hook = steps.bigquery
        # A view's day is copied into a table the shards' streams read (dropped by the commit).
        seed = hashlib.sha256(run.job_id_seed.encode()).hexdigest()[:12]  # a retried plan replaces its copy
        read_from, restriction, copy = steps.readable_day(run, seed)
        source_rows = hook.count_rows(read_from, restriction or "TRUE")
        lineage = run.lineage
        plan: dict[str, Any] = {
            "target_date": run.day.isoformat(),
            "model_ref": f"{run.resolved.name}/{run.resolved.version}",
            "model_name": lineage.model_name,
            "model_version": str(lineage.model_version),
            "model_run_id": lineage.model_run_id,
            "predicted_at": lineage.predicted_at.isoformat(),
            "airflow_dag_id": lineage.airflow_dag_id,
            "airflow_run_id": lineage.airflow_run_id,
            "source": str(run.source),
            "destination": str(run.destination),
            "source_rows": source_rows,
            "features": list(run.plan.features),  # for the commit's lineage
            "passthrough": list(run.plan.passthrough),
            "read_copy": str(copy) if copy is not None else None,
        }
        steps.note_read(run)
        if source_rows == 0:
            if copy is not None:
                steps.drop_read_copy(copy)
            with tempfile.TemporaryDirectory(prefix="somlier-") as workdir:
                # on_empty, exactly as the single task applies it: skip, fail, or empty the day.
                steps.replace(run, StagedPredictions(path=f"{workdir}/empty.parquet", rows_read=0, schema=None))
            context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan | {"streams": 0, "digest": "", "session": ""})
            return []
        streams = hook.create_read_streams(read_from, run.plan.read_columns, restriction, self.shards)
        digest = hashlib.sha256(
            "|".join((lineage.airflow_dag_id, self.task_id, lineage.airflow_run_id, str(run.destination),
                      run.day.isoformat(), streams.session)).encode()
        ).hexdigest()[:12]
        plan |= {
            "session": streams.session,
            "streams": len(streams.streams),
            "expires_at": streams.expires_at.isoformat() if streams.expires_at else None,
            "arrow_schema": base64.b64encode(streams.arrow_schema).decode(),
            "digest": digest,
        }
        shards = [{"index": i, "stream": name} for i, name in enumerate(streams.streams)]
        context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan)
        self.log.info(
            "Plan: %d source row(s) of %s in %d shard(s) of session %s, model %s",
            source_rows, run.day, len(shards), streams.session, plan["model_ref"],
        )
        return shards


class MLOpsShardScoreOperator(MLOpsOfflineOperator):
    """Score one shard of a plan and stage its rows in the shard's own staging table.

    Mapped over the plan's ``shards``. Runs every check of the single task again with
    the plan's pinned version (a moved alias cannot split a day between versions) and
    fails if its target day differs from the plan's.
    """

    template_fields: Sequence[str] = (*MLOpsOfflineOperator.template_fields, "plan")
    loads_quality_baseline = False  # a shard only profiles its rows; the plan and the commit read the baseline

    def __init__(self, *, plan: Any, shard: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.shard = shard

    def execute(self, context: Context) -> dict[str, Any]:
        import base64
        import tempfile

        from airflow_provider_somlier.hooks.bigquery_staging import shard_staging_table_name
        from airflow_provider_somlier.offline_run import OfflineRun
        from airflow_provider_somlier.output import staged_fields

        plan, index = self.plan, int(self.shard["index"])
        self.model_ref = plan["model_ref"]
        steps = self._run = OfflineRun(self)
        run = steps.prepare(context)
        if run.day.isoformat() != plan["target_date"]:
            raise ShardedRunError(
                f"shard {index} computes target day {run.day} but its plan was made for {plan['target_date']}; "
                "clear the whole task group"
            )
        steps.note_read(run)
        hook = steps.bigquery
        expires_at = dt.datetime.fromisoformat(plan["expires_at"]) if plan.get("expires_at") else None
        batches = hook.read_stream(self.shard["stream"], base64.b64decode(plan["arrow_schema"]), expires_at=expires_at)
        staging = run.destination.sibling(
            shard_staging_table_name(run.destination.table, run.day, plan["digest"], index)
        )
        with tempfile.TemporaryDirectory(prefix="somlier-") as workdir:
            staged = steps.score(run, f"{workdir}/shard.parquet", batches)
            if staged.rows_read == 0:
                self.log.info("Shard %d of %s holds no rows; nothing staged", index, run.day)
                return {"index": index, "rows": 0, "staging": None, "schema": None}
            with steps.clock.timing("load"):
                loaded = hook.stage_parquet(staged.path, staging, staged_fields(staged.schema))
        if loaded != staged.rows_read:
            raise ShardCountMismatchError(
                f"shard {index} read {staged.rows_read} row(s) but its staging table {staging} holds {loaded}; "
                "retry the shard"
            )
        self.log.info("Shard %d: %d row(s) of %s staged in %s", index, loaded, run.day, staging)
        self.log.info("SoMLier phases: %s", steps.clock.line())
        return {
            "index": index,
            "rows": loaded,
            "phases": steps.clock.as_dict(),
            "staging": str(staging),
            "schema": [[field.name, field.field_type] for field in staged.schema],
            "profile": staged.profile.to_dict() if staged.profile is not None else None,  # merged by the commit
        }


class MLOpsShardCommitOperator(MLOpsOfflineOperator):
    """Check every shard's staged count against the plan, then replace the day from all of them at once."""

    template_fields: Sequence[str] = (*MLOpsOfflineOperator.template_fields, "plan", "shard_results")

    def __init__(self, *, plan: Any, shard_results: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.shard_results = shard_results

    def execute(self, context: Context) -> dict[str, Any]:
        import time

        from google.cloud import bigquery

        from airflow_provider_somlier.offline_run import OfflineRun, day_summary
        from airflow_provider_somlier.output import Lineage, lineage_values
        from airflow_provider_somlier.refs import parse_table_ref

        started = time.monotonic()
        steps = self._run = OfflineRun(self)
        plan = self.plan
        results = sorted(self.shard_results or [], key=lambda r: r["index"])
        if [r["index"] for r in results] != list(range(plan["streams"])):
            raise ShardedRunError(
                f"the plan made {plan['streams']} shard(s) but results came from shard(s) "
                f"{[r['index'] for r in results]}; clear the whole task group"
            )
        staged = [r for r in results if r["staging"]]
        total = sum(r["rows"] for r in results)
        if total != plan["source_rows"]:
            raise ShardCountMismatchError(
                f"the shards staged {total} row(s) but the plan counted {plan['source_rows']} in {plan['source']} "
                f"for {plan['target_date']} (did the source change during the run?); the day was left as it was: "
                "clear the whole task group"
            )
        schemas = {tuple(map(tuple, r["schema"])) for r in staged}
        if len(schemas) != 1:
            raise ShardedRunError(f"shards staged {len(schemas)} different schemas; clear the whole task group")
        schema = [bigquery.SchemaField(name, field_type) for name, field_type in next(iter(schemas))]

        hook = self.bigquery_hook()
        destination = parse_table_ref(plan["destination"], hook.project_id, field="destination_table_ref")
        stagings = [parse_table_ref(r["staging"], hook.project_id, field="staging") for r in staged]
        # The copy of a view's day the shards read: it goes when their staging tables go.
        copies = [parse_table_ref(plan["read_copy"], hook.project_id, field="read_copy")] if plan.get("read_copy") else []
        day = dt.date.fromisoformat(plan["target_date"])
        constants = lineage_values(
            Lineage(
                model_name=plan["model_name"], model_version=int(plan["model_version"]),
                model_run_id=plan["model_run_id"], target_date=day,
                predicted_at=dt.datetime.fromisoformat(plan["predicted_at"]),
                airflow_dag_id=plan["airflow_dag_id"], airflow_run_id=plan["airflow_run_id"],
            )
        )
        gone = hook.missing_tables(stagings)
        if gone:  # a commit that ran before (then was killed, or is cleared alone) dropped them
            steps.clock.add("checks", time.monotonic() - started)
            self._check_already_committed(hook, destination, gone, constants, total)
            self.log.info("The day was already committed from this plan; nothing to write")
            # A shard cleared and run again after that commit staged its rows anew: nothing will read them.
            self._drop_staging(hook, [ref for ref in stagings if ref not in gone] + copies)
            job_id = None
            quality = None
        else:
            from airflow_provider_somlier.errors import QualityCheckError
            from airflow_provider_somlier.quality.day_gate import judge_shards, quality_summary

            steps.clock.add("checks", time.monotonic() - started)
            try:
                with steps.clock.timing("profile"):
                    gate, profile, verdict = judge_shards(
                        self, hook, destination, day, [r.get("profile") for r in staged], plan["model_run_id"], self.log
                    )
            except QualityCheckError:
                self._drop_staging(hook, stagings + copies)  # refused: the day keeps its old rows, the shards' rows go
                raise
            with steps.clock.timing("profile"):
                also = gate.statements(hook, day, profile, verdict, constants) if gate is not None else []
            with steps.clock.timing("transaction"):
                job_id = self._commit(
                    hook, destination, schema, day, staged, stagings, plan["digest"], constants, also
                )
            self._drop_staging(hook, copies)
            quality = quality_summary(profile, verdict, gate.baseline) if gate is not None else None
        summary = day_summary(
            target_date=day, rows_read=plan["source_rows"], rows_written=total, model_name=plan["model_name"],
            model_version=plan["model_version"], model_run_id=plan["model_run_id"], source=plan["source"],
            destination=destination, job_id=job_id, started=started, shards=plan["streams"],
            **({"quality": quality} if quality is not None else {}),
        )
        # The day is written: the commit alone says so, as the single task does.
        steps.announce(context, summary, plan.get("features", ()), plan.get("passthrough", ()))
        return steps.finish(summary)

    def _commit(self, hook: Any, destination: Any, schema: list, day: dt.date, staged: list[dict[str, Any]],
                stagings: list, digest: str, constants: dict[str, Any], also: Sequence[str] = ()) -> str:
        """Check the staging tables against their shards, replace the day from them, drop them."""
        from airflow_provider_somlier.output import TARGET_DATE_COLUMN, check_destination

        counted = hook.count_staged(stagings)
        wrong = [(r["index"], r["rows"], n) for r, n in zip(staged, counted) if n != r["rows"]]
        if wrong:
            raise ShardCountMismatchError(
                "staging table(s) hold other counts than their shards staged: "
                + ", ".join(f"shard {i} staged {want}, holds {have}" for i, want, have in wrong)
                + "; clear those shards (or the whole task group)"
            )
        existing = hook.get_table_or_none(destination)
        if existing is None:
            hook.create_day_partitioned_table(destination, schema, TARGET_DATE_COLUMN)
        else:
            check_destination(existing.schema, schema, str(destination))
        hook.sweep_stale_staging(destination)
        job_id = hook.commit_staged(destination, schema, TARGET_DATE_COLUMN, day, stagings, digest, constants, also=also)
        self._drop_staging(hook, stagings)
        return job_id

    def _drop_staging(self, hook: Any, stagings: list) -> None:
        """Drop the plan's staging tables (the day committed, or refused); best effort, a later run sweeps them."""
        if not stagings:
            return
        try:
            hook.drop_tables(stagings)
        except Exception as exc:  # noqa: BLE001 - the day is committed; a later run sweeps them
            self.log.warning("Could not drop the shard staging tables (a later run sweeps them): %s", exc)

    @staticmethod
    def _check_already_committed(hook: Any, destination: Any, gone: list, constants: dict[str, Any], total: int) -> None:
        """Pass when the destination's day is exactly this plan's rows; else a named error (clear the group).

        Every row a plan commits carries its ``predicted_at`` and run id, so a day holding
        ``total`` rows of this plan and nothing else was committed by it.
        """
        from airflow_provider_somlier.bq_sql import literal
        from airflow_provider_somlier.output import LINEAGE_COLUMNS, TARGET_DATE_COLUMN

        def literals(*names: str) -> dict[str, str]:
            return {name: literal(constants[name], LINEAGE_COLUMNS[name], field=name) for name in names}

        day_rows = plan_rows = 0
        if hook.get_table_or_none(destination) is not None:
            day_rows = hook.count_rows_where(destination, literals(TARGET_DATE_COLUMN))
            plan_rows = hook.count_rows_where(destination, literals(TARGET_DATE_COLUMN, "predicted_at", "airflow_run_id"))
        if not day_rows == plan_rows == total:
            raise ShardedRunError(
                f"the staging tables of this plan are gone ({', '.join(str(ref) for ref in gone)}) and "
                f"{destination} does not hold its day ({plan_rows} of {day_rows} row(s) of "
                f"{constants[TARGET_DATE_COLUMN]} are this plan's, {total} expected); clear the whole task group"
            )


def _default_args_in_scope() -> dict[str, Any]:
    """The ``default_args`` a task created here would get: the current DAG's, then enclosing groups'."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext, TaskGroupContext

    dag = DagContext.get_current()
    merged = dict(getattr(dag, "default_args", None) or {})
    group = TaskGroupContext.get_current(dag)
    chain = []
    while group is not None:
        chain.append(group.default_args or {})
        group = group.parent_group
    for defaults in reversed(chain):
        merged.update(defaults)
    return merged


def sharded_offline(
    group_id: str = "predict",
    *,
    shards: int,
    max_active_shards: int | None = None,
    score_pool: str | None = None,
    score_queue: str | None = None,
    score_executor_config: dict[str, Any] | None = None,
    score_executor: str | None = None,
    **operator_kwargs: Any,
) -> TaskGroup:
    """The sharded offline path as one task group: ``plan`` → ``score`` (mapped, one per shard) → ``commit``.

    ``operator_kwargs`` are those of :class:`MLOpsOfflineOperator` and go to all three
    tasks. ``max_active_shards`` bounds how many shards of one run score at once
    (``max_active_tis_per_dagrun``); ``score_pool`` puts the score tasks in a pool,
    bounding them across runs; ``score_queue`` sends them to the Celery workers of that
    queue (a big-memory queue) and ``score_executor_config`` gives each its own pod on the
    KubernetesExecutor (``routing.shard_pod_override(cpu="1", memory="4Gi")``);
    ``score_executor="KubernetesExecutor"`` sends them there where a deployment runs it beside
    Celery. The plan and the commit stay on the defaults. Use it in a DAG file as one statement::

        sharded_offline("predict", shards=4, model_ref="churn@champion", dataset_ref="features.daily",
                        dataset_load_column="load_date", destination_table_ref="predictions.churn")
    """
    from airflow.sdk import TaskGroup
    from airflow.sdk.definitions.xcom_arg import XComArg

    from airflow_provider_somlier.operators.routing import score_routing

    # The single task's defaults for outages, passed explicitly (a mapped task takes Airflow's own
    # otherwise) unless the DAG's or an enclosing group's default_args set them, which win as they
    # do for the single task.
    given = _default_args_in_scope()
    for name, value in (("retries", DEFAULT_RETRIES), ("retry_delay", DEFAULT_RETRY_DELAY),
                        ("retry_exponential_backoff", DEFAULT_RETRY_EXPONENTIAL_BACKOFF),
                        ("max_retry_delay", DEFAULT_MAX_RETRY_DELAY)):
        if name not in given:
            operator_kwargs.setdefault(name, value)
    score_kwargs: dict[str, Any] = {}
    if max_active_shards is not None:
        if not isinstance(max_active_shards, int) or isinstance(max_active_shards, bool) or max_active_shards < 1:
            raise InvalidArgumentError(
                f"max_active_shards must be a positive integer (or None for no bound), got {max_active_shards!r}"
            )
        score_kwargs["max_active_tis_per_dagrun"] = max_active_shards
    score_kwargs |= score_routing(score_queue, score_pool, score_executor_config, score_executor)
    # Only the commit writes the day, so only it declares the predictions asset (or the caller's outlets).
    commit_outlets = {"outlets": operator_kwargs.pop("outlets")} if "outlets" in operator_kwargs else {}
    with TaskGroup(group_id) as group:
        planner = MLOpsShardPlanOperator(task_id="plan", shards=shards, outlets=[], **operator_kwargs)
        plan = XComArg(planner, key=PLAN_XCOM_KEY)
        score = MLOpsShardScoreOperator.partial(
            task_id="score", plan=plan, outlets=[], **operator_kwargs, **score_kwargs
        ).expand(shard=planner.output)
        MLOpsShardCommitOperator(
            task_id="commit", plan=plan, shard_results=score.output, **operator_kwargs, **commit_outlets
        )
    return group
