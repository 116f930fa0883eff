"""``somlier search``, ``register`` and ``deploy``: the registry's runs and versions, and serving one."""

from __future__ import annotations

from collections.abc import Callable

import click

from airflow_provider_somlier.cli.base import main, run_action
from airflow_provider_somlier.cli.registry_options import mlflow_client, registry_errors, tracking_option


@main.command("search")
@click.argument("project_name")
@click.argument("standard_metric")
@click.argument("order_by")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", default=20, show_default=True, help="Runs to show.")
@tracking_option
def search(project_name: str, standard_metric: str, order_by: str, output: str, limit: int, tracking_uri: str | None) -> None:
    """The runs of PROJECT_NAME ordered by STANDARD_METRIC (ASC or DESC), best first."""

    def action() -> None:
        import json

        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.registry import search_runs

        with work_output_to_stderr():
            runs = search_runs(mlflow_client(tracking_uri), project_name, standard_metric, order_by, limit)
        if output == "json":
            click.echo(json.dumps([{"run_id": r.run_id, "metric_value": r.metric_value, "params": r.params} for r in runs]))
            return
        click.echo(f"{'run_id':<34} {standard_metric:>14}  params")
        for run in runs:
            params = ", ".join(f"{k}={v}" for k, v in sorted(run.params.items()))
            click.echo(f"{run.run_id:<34} {run.metric_value:>14.6g}  {params}")

    run_action(registry_errors(action))


@main.command("register")
@click.argument("run_id")
@click.argument("model_name")
@click.option("--standard_metric", default="training_mae", show_default=True, help="Metric deciding is_newer_version.")
@click.option("--order_by", default="ASC", show_default=True, help="ASC: lower is better; DESC: higher is better.")
@click.option("--alias", help="Move this alias (e.g. champion) to the new version when it beats the best one.")
@click.option("--artifact_path", default=None,
              help="Name of the run's logged model [default: model, or the run's only logged model].")
@click.option("--training_data", help="A Parquet or CSV file of the training frame: its profile is logged with the run "
              "as the baseline of baseline='training'.")
@tracking_option
def register(
    run_id: str, model_name: str, standard_metric: str, order_by: str, alias: str | None, artifact_path: str | None,
    training_data: str | None, tracking_uri: str | None,
) -> None:
    """Register the model RUN_ID logged under MODEL_NAME; print {model_version, is_newer_version, message}.

    The run must be FINISHED and have logged the metric and a model; is_newer_version
    compares it with the best registered version on the metric.
    """

    def action() -> None:
        import json

        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.registry import register_run

        client = mlflow_client(tracking_uri)
        frame = None
        if training_data:  # read before registering: a bad file registers nothing
            from airflow_provider_somlier.quality.training import read_training_file

            frame = read_training_file(training_data)
        with work_output_to_stderr():
            answer = register_run(
                client, run_id, model_name, metric=standard_metric, order_by=order_by,
                artifact_path=artifact_path, alias=alias,
                training_columns=frame.column_names if frame is not None else None,
                log_profile=_profile_logger(client, run_id, frame) if frame is not None else None,
            )
        click.echo(json.dumps(answer))

    run_action(registry_errors(action))


def _profile_logger(client, run_id: str, frame) -> Callable[[], str]:
    """What ``register_run`` calls, once the run passed its checks and before the version is made,
    to log the training file's profile with the run: a version never exists without its baseline."""

    def log() -> str:
        from airflow_provider_somlier.quality.training import log_profile_with_run

        return log_profile_with_run(client, run_id, frame)

    return log


@main.command("deploy")
@click.argument("project_name")
@click.argument("model_name")
@click.argument("model_version")
@click.option("--use_k8s_job", default="False", show_default=True, help="Run as a Kubernetes Job instead of a Deployment.")
@click.option("--istio_enabled", default="False", show_default=True, help="Add an Istio VirtualService.")
@click.option("--image", default="somlier-online:latest", show_default=True, help="The online server image.")
@click.option("--namespace", default="default", show_default=True)
@click.option(
    "--mlflow_secret", default="somlier-mlflow", show_default=True,
    help="Secret holding AIRFLOW_CONN_MLFLOW_DEFAULT (the registry's mlflow connection as JSON) for the pod.",
)
@click.option("--cpu", help="CPU request and limit, e.g. 500m.")
@click.option("--memory", help="Memory request and limit, e.g. 1Gi.")
@click.option("--dry_run", is_flag=True, help="Check the version, print the manifests as YAML; apply nothing.")
@tracking_option
def deploy(
    project_name: str, model_name: str, model_version: str, use_k8s_job: str, istio_enabled: str, image: str,
    namespace: str, mlflow_secret: str, cpu: str | None, memory: str | None, dry_run: bool, tracking_uri: str | None,
) -> None:
    """Serve MODEL_NAME version MODEL_VERSION (a number, or an alias resolved to its version now) with the
    online server on Kubernetes (create or update)."""

    def action() -> None:
        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.deploy import (
            apply,
            check_version,
            manifests,
            resolve_version,
            to_yaml,
            validate,
        )
        from airflow_provider_somlier.window import parse_bool

        client = mlflow_client(tracking_uri)
        with work_output_to_stderr():
            version = resolve_version(client, model_name, model_version)
        if version != model_version.strip():
            click.echo(f"{model_name}@{model_version.strip().removeprefix('@')} is version {version}: deploying it",
                       err=True)
        objects = manifests(
            project_name, model_name, version, image=image, namespace=namespace,
            use_k8s_job=parse_bool(use_k8s_job, field="--use_k8s_job"),
            istio_enabled=parse_bool(istio_enabled, field="--istio_enabled"),
            mlflow_secret=mlflow_secret, cpu=cpu, memory=memory,
        )
        validate(objects)
        with work_output_to_stderr():
            check_version(client, model_name, version)
        if dry_run:
            click.echo(to_yaml(objects), nl=False)
            return
        for applied in apply(objects):
            click.echo(f"applied {applied}")

    run_action(registry_errors(action))
