"""``somlier batch create``: a DAG running a docker image's entrypoint on Kubernetes."""

from __future__ import annotations

import os

import click

from airflow_provider_somlier.cli.base import TOKEN_ENV, main, run_action, yesterday_kst
from airflow_provider_somlier.cli.publishing import deliver, publishing_options


@main.group()
def batch() -> None:
    """DAGs that run a docker image's entrypoint with KubernetesPodOperator."""


@batch.command("create")
@click.argument("docker_image")
@click.argument("schedule")
@click.argument("entrypoint")
@click.argument("dag_id")
@click.option("--start_date", help="First day of the schedule, YYYY-MM-DD. Default: yesterday (KST).")
@click.option("--namespace", default="default", show_default=True, help="Kubernetes namespace of the pod.")
@click.option("--service_account", help="Kubernetes service account of the pod.")
@click.option("--cpu", help="CPU request and limit, e.g. 500m.")
@click.option("--memory", help="Memory request and limit, e.g. 2Gi.")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="Environment variable of the container (repeatable).")
@publishing_options
def batch_create(
    docker_image: str,
    schedule: str,
    entrypoint: str,
    dag_id: str,
    start_date: str | None,
    namespace: str,
    service_account: str | None,
    cpu: str | None,
    memory: str | None,
    env: tuple[str, ...],
    dry_run: bool,
    check_airflow: bool,
    local_repo: str | None,
) -> None:
    """Generate a DAG running DOCKER_IMAGE with ENTRYPOINT (e.g. 'sh -c predict.sh') on SCHEDULE.

    Publishing to GitHub reads the token from $GITHUB_PERSONAL_ACCESS_TOKEN.
    """

    def action() -> None:
        import shlex

        from airflow_provider_somlier.errors import InvalidArgumentError
        from airflow_provider_somlier.generate.lint import lint_dag_source
        from airflow_provider_somlier.generate.render import render_batch
        from airflow_provider_somlier.generate.spec import BatchDagSpec, checked_text

        pairs = {}
        for item in env:
            if "=" not in item:
                raise InvalidArgumentError(f"--env {ascii(checked_text(item, '--env')[:80])} is not NAME=VALUE")
            name, value = item.split("=", 1)
            if name in pairs:
                raise InvalidArgumentError(
                    f"--env {ascii(checked_text(name, '--env name')[:80])} is given twice; give each variable once"
                )
            pairs[name] = value
        spec = BatchDagSpec.validated(
            docker_image=docker_image,
            schedule=schedule,
            entrypoint=entrypoint,
            dag_id=dag_id,
            start_date=start_date or yesterday_kst(),
            namespace=namespace,
            service_account=service_account,
            cpu=cpu,
            memory=memory,
            env=pairs,
        )
        command = [
            "somlier", "batch", "create", spec.docker_image, spec.schedule, shlex.join(spec.entrypoint), spec.dag_id,
            "--start_date", spec.start_date.isoformat(), "--namespace", spec.namespace,
            *(["--service_account", spec.service_account] if spec.service_account else []),
            *(["--cpu", spec.cpu] if spec.cpu else []),
            *(["--memory", spec.memory] if spec.memory else []),
            *[arg for name, value in spec.env for arg in ("--env", f"{name}={value}")],
        ]
        source = render_batch(spec, command)
        description = (
            f"- image: `{spec.docker_image}`\n- schedule: `{spec.schedule}`\n"
            f"- entrypoint: `{list(spec.entrypoint)}`\n- namespace: `{spec.namespace}`"
        )
        deliver(
            dag_id=spec.dag_id, source=source, description=description, dry_run=dry_run,
            check_airflow=check_airflow, local_repo=local_repo, token=os.environ.get(TOKEN_ENV, ""),
            lint=lambda: lint_dag_source(source, spec.dag_id, "run", "KubernetesPodOperator", build_pod=True),
        )

    run_action(action)
