"""``somlier offline create_v2``: a DAG scoring a registry model over BigQuery every day."""

from __future__ import annotations

import json
import os

import click

from airflow_provider_somlier.cli.base import TOKEN_ENV, main, run_action, yesterday_kst
from airflow_provider_somlier.cli.publishing import deliver, publishing_options
from airflow_provider_somlier.generate.routing import routing_options


@main.group()
def offline() -> None:
    """DAGs that score a registry model over BigQuery with MLOpsOfflineOperator."""


@offline.command("create_v2")
@click.argument("model_ref")
@click.argument("dag_id")
@click.argument("schedule_interval")
@click.argument("dataset_ref")
@click.argument("dataset_load_column")
@click.argument("destination_table_ref")
@click.argument("github_personal_access_token", required=False, default="-", metavar="[GITHUB_PERSONAL_ACCESS_TOKEN]")
@click.option("--start_date", help="First day of the schedule, YYYY-MM-DD. Default: yesterday (KST).")
@click.option("--dataset_load_window", default="1", show_default=True, help="Days back from the run's date.")
@click.option("--dataset_load_by_kst", default="True", show_default=True, help="Take the run's date in KST (else UTC).")
@click.option("--passthrough_columns", default="", help="Comma-separated id columns copied to the output.")
@click.option("--shards", default=None, help="Score each day in up to N parallel tasks (plan, N mapped shards, one commit).")
@click.option("--quality_checks", default=None,
              help='Quality gate thresholds as JSON, e.g. \'{"max_psi": 0.2, "prediction_range": [0, 1]}\'.')
@click.option("--baseline", default=None, help="Drift baseline: previous_days:N (default 7), training or none.")
@click.option("--on_quality_failure", default=None, help="fail (default: the day keeps its old rows) or warn.")
@click.option("--null_features", default=None,
              help="NULL/NaN features: auto (default: as NaN to a model that takes missing values), pass or refuse.")
@routing_options
@publishing_options
def create_v2(
    model_ref: str,
    dag_id: str,
    schedule_interval: str,
    dataset_ref: str,
    dataset_load_column: str,
    destination_table_ref: str,
    github_personal_access_token: str,
    start_date: str | None,
    dataset_load_window: str,
    dataset_load_by_kst: str,
    passthrough_columns: str,
    shards: str | None,
    quality_checks: str | None,
    baseline: str | None,
    on_quality_failure: str | None,
    null_features: str | None,
    dry_run: bool,
    check_airflow: bool,
    local_repo: str | None,
    **routing: str | None,
) -> None:
    """Generate a DAG running MLOpsOfflineOperator daily and open a pull request on the dags repo.

    The token may be given as '-' (or left out) and read from $GITHUB_PERSONAL_ACCESS_TOKEN.
    """
    token = github_personal_access_token
    if token in ("-", ""):
        token = os.environ.get(TOKEN_ENV, "")

    def action() -> None:
        from airflow_provider_somlier.generate.lint import SHARDED_TASKS, lint_dag_source
        from airflow_provider_somlier.generate.render import render_offline
        from airflow_provider_somlier.generate.spec import OfflineDagSpec

        spec = OfflineDagSpec.validated(
            model_ref=model_ref,
            dag_id=dag_id,
            schedule=schedule_interval,
            dataset_ref=dataset_ref,
            dataset_load_column=dataset_load_column,
            destination_table_ref=destination_table_ref,
            start_date=start_date or yesterday_kst(),
            dataset_load_window=dataset_load_window,
            dataset_load_by_kst=dataset_load_by_kst,
            passthrough_columns=[c.strip() for c in passthrough_columns.split(",") if c.strip()],
            shards=shards,
            quality_checks=quality_checks,
            baseline=baseline,
            on_quality_failure=on_quality_failure,
            null_features=null_features,
            **routing,
        )
        # The header shows the canonical command for these inputs (token as '-'), not argv.
        command = [
            "somlier", "offline", "create_v2", spec.model_ref, spec.dag_id, spec.schedule, spec.dataset_ref,
            spec.dataset_load_column, spec.destination_table_ref, "-",
            "--start_date", spec.start_date.isoformat(),
            "--dataset_load_window", str(spec.dataset_load_window),
            "--dataset_load_by_kst", str(spec.dataset_load_by_kst),
            *(["--passthrough_columns", ",".join(spec.passthrough_columns)] if spec.passthrough_columns else []),
            *(["--shards", str(spec.shards)] if spec.shards else []),
            *(["--quality_checks", json.dumps(spec.quality_checks, sort_keys=True)]
              if spec.quality_checks is not None else []),
            *(["--baseline", spec.baseline] if spec.baseline else []),
            *(["--on_quality_failure", spec.on_quality_failure] if spec.on_quality_failure else []),
            *(["--null_features", spec.null_features] if spec.null_features else []),
            *spec.routing.flags(),
        ]
        source = render_offline(spec, command)
        executors = (spec.routing.executor,) if spec.routing.executor else ()
        description = "\n".join(
            f"- `{name}`: `{value}`"
            for name, value in (
                ("model_ref", spec.model_ref), ("dag_id", spec.dag_id), ("schedule", spec.schedule),
                ("dataset_ref", spec.dataset_ref), ("dataset_load_column", spec.dataset_load_column),
                ("destination_table_ref", spec.destination_table_ref), ("start_date", spec.start_date),
                ("dataset_load_window", spec.dataset_load_window), ("dataset_load_by_kst", spec.dataset_load_by_kst),
                ("passthrough_columns", ", ".join(spec.passthrough_columns) or "none"),
                *([("shards", spec.shards)] if spec.shards else []),
                *([("quality_checks", json.dumps(spec.quality_checks, sort_keys=True))]
                  if spec.quality_checks is not None else []),
                *([("baseline", spec.baseline)] if spec.baseline else []),
                *([("on_quality_failure", spec.on_quality_failure)] if spec.on_quality_failure else []),
                *([("null_features", spec.null_features)] if spec.null_features else []),
                *spec.routing.described(),
            )
        )
        deliver(
            dag_id=spec.dag_id, source=source, description=description, dry_run=dry_run,
            check_airflow=check_airflow, local_repo=local_repo, token=token,
            lint=lambda: lint_dag_source(source, spec.dag_id, "predict", "MLOpsOfflineOperator",
                                         tasks=SHARDED_TASKS if spec.shards else None, executors=executors),
        )

    run_action(action, secrets=(token,))
