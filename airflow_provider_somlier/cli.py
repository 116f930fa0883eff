"""The ``somlier`` command: argument parsing only; the work happens in ``generate/``.

Exit codes: 0 done, 1 a step failed (publishing, Airflow check), 2 bad input.
Errors go to stderr. The GitHub token is read, used and never printed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable

import click

from airflow_provider_somlier.generate.routing import routing_options

TOKEN_ENV = "GITHUB_PERSONAL_ACCESS_TOKEN"
KST = dt.timezone(dt.timedelta(hours=9))


def _yesterday_kst() -> dt.date:
    """The default first day of a generated schedule (the seed: one day before the command runs)."""
    return dt.datetime.now(KST).date() - dt.timedelta(days=1)


def _say(message: str, *, err: bool = False, secrets: tuple[str, ...] = ()) -> None:
    """Print ``message`` with every GitHub token masked, on any terminal encoding."""
    from airflow_provider_somlier.generate.redact import mask_tokens

    text = mask_tokens(message, (os.environ.get(TOKEN_ENV), *secrets))
    encoding = getattr(sys.stderr if err else sys.stdout, "encoding", None) or "utf-8"
    click.echo(text.encode(encoding, "backslashreplace").decode(encoding), err=err)


def _run(action: Callable[[], None], *, secrets: tuple[str, ...] = ()) -> None:
    """Turn SoMLier's named errors into a message on stderr and the right exit code."""
    from airflow_provider_somlier.errors import SomlierError, SomlierInputError

    try:
        action()
    except SomlierInputError as exc:
        _say(f"error: {exc}", err=True, secrets=secrets)
        sys.exit(2)
    except SomlierError as exc:
        _say(f"error: {exc}", err=True, secrets=secrets)
        sys.exit(1)


class _TokenSafeGroup(click.Group):
    """The command group: click's own messages (usage errors quoting an argument) and
    unexpected tracebacks are printed with GitHub tokens masked, like SoMLier's own."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as exc:
            raise _masked(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            raise _masked(exc) from None
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception:
            import traceback

            _say(traceback.format_exc().rstrip(), err=True)
            sys.exit(1)


def _masked(exc: click.ClickException) -> click.ClickException:
    from airflow_provider_somlier.generate.redact import mask_tokens

    exc.message = mask_tokens(exc.message, (os.environ.get(TOKEN_ENV),))
    return exc


def _deliver(
    *,
    dag_id: str,
    source: str,
    description: str,
    dry_run: bool,
    check_airflow: bool,
    local_repo: str | None,
    token: str | None,
    lint: Callable[[], object],
) -> None:
    from pathlib import Path

    from airflow_provider_somlier.errors import InvalidArgumentError
    from airflow_provider_somlier.generate.airflow_check import wait_for_dag
    from airflow_provider_somlier.generate.publish import GitHubPublisher, LocalGitPublisher, Publisher
    from airflow_provider_somlier.generate.settings import Settings

    settings = Settings.load()
    local_repo = local_repo or settings.local_dags_repo
    publisher: Publisher | None = None
    if local_repo:
        publisher = LocalGitPublisher(Path(local_repo), folder=settings.dags_folder)
    elif settings.dags_repo:
        publisher = GitHubPublisher(
            token=token or "",
            repository=settings.dags_repo,
            base_branch=settings.dags_base_branch,
            folder=settings.dags_folder,
            base_url=settings.github_base_url,
        )
    missing = (
        f"no dags repository: set SOMLIER_DAGS_REPO=owner/name (with a token in ${TOKEN_ENV}), "
        "or pass --local_repo PATH"
    )
    if dry_run:
        click.echo(source, nl=False)
        plan = publisher.describe(dag_id) if publisher else f"publish it, which needs a dags repository ({missing})"
        _say(f"# dry run: would lint the file, then {plan}", err=True, secrets=(token or "",))
        return
    if publisher is None:
        raise InvalidArgumentError(missing)
    if isinstance(publisher, GitHubPublisher) and not token:
        raise InvalidArgumentError(f"a GitHub token is needed: pass it as the last argument or set {TOKEN_ENV}")
    if isinstance(publisher, GitHubPublisher) and not (token.isascii() and token.isprintable() and " " not in token):
        raise InvalidArgumentError(
            f"the GitHub token (last argument or {TOKEN_ENV}) holds spaces or characters other than printable "
            "ASCII: copy it again from GitHub"
        )
    _say(f"linting {dag_id}.py with Airflow's DagBag ...", err=True)
    lint()
    published = publisher.publish(dag_id, source, description)
    _say(f"{published.action}: {published.location}", secrets=(token or "",))
    if check_airflow:
        _say(f"waiting for Airflow at {settings.airflow_api_url} to list {dag_id} ...", err=True)
        record = wait_for_dag(dag_id, f"{dag_id}.py", settings)
        _say(f"Airflow lists {dag_id} (paused: {record.get('is_paused')})")


def publishing_options(command: Callable) -> Callable:
    """The options every generator shares: what to do with the rendered file."""
    for option in reversed((
        click.option("--dry_run", is_flag=True, help="Print the DAG and what would be published; touch nothing."),
        click.option("--check_airflow", is_flag=True, help="After publishing, wait until Airflow lists the DAG."),
        click.option(
            "--local_repo", type=click.Path(file_okay=False), help="Commit into this local git repo instead of GitHub."
        ),
    )):
        command = option(command)
    return command


@click.group(cls=_TokenSafeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SoMLier: batch-first ML model serving on Airflow and MLflow."""


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
            start_date=start_date or _yesterday_kst(),
            dataset_load_window=dataset_load_window,
            dataset_load_by_kst=dataset_load_by_kst,
            passthrough_columns=[c.strip() for c in passthrough_columns.split(",") if c.strip()],
            shards=shards,
            quality_checks=quality_checks,
            baseline=baseline,
            on_quality_failure=on_quality_failure,
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
            *spec.routing.flags(),
        ]
        source = render_offline(spec, command)
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
                *spec.routing.described(),
            )
        )
        _deliver(
            dag_id=spec.dag_id, source=source, description=description, dry_run=dry_run,
            check_airflow=check_airflow, local_repo=local_repo, token=token,
            lint=lambda: lint_dag_source(source, spec.dag_id, "predict", "MLOpsOfflineOperator")
            if not spec.shards
            else lint_dag_source(source, spec.dag_id, "predict", "MLOpsOfflineOperator", tasks=SHARDED_TASKS),
        )

    _run(action, secrets=(token,))


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
            pairs[name] = value
        spec = BatchDagSpec.validated(
            docker_image=docker_image,
            schedule=schedule,
            entrypoint=entrypoint,
            dag_id=dag_id,
            start_date=start_date or _yesterday_kst(),
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
        _deliver(
            dag_id=spec.dag_id, source=source, description=description, dry_run=dry_run,
            check_airflow=check_airflow, local_repo=local_repo, token=os.environ.get(TOKEN_ENV, ""),
            lint=lambda: lint_dag_source(source, spec.dag_id, "run", "KubernetesPodOperator", build_pod=True),
        )

    _run(action)



REGISTRY_PROBE_SECONDS = 10


def _registry_errors(action: Callable[[], None]) -> Callable[[], None]:
    """MLflow's own errors as a named SoMLier error (a message, not a traceback)."""

    def run() -> None:
        from mlflow.exceptions import MlflowException

        from airflow_provider_somlier.errors import RegistryUnavailableError

        try:
            action()
        except MlflowException as exc:
            raise RegistryUnavailableError(f"MLflow failed: {exc.message}") from None

    return run



def _tracking_uri(tracking_uri: str | None) -> str:
    """The registry to use, checked before any work: a known scheme, and an HTTP server that answers.

    MLflow's client retries an unreachable server for minutes without a word; a probe of
    its ``/health`` endpoint with a short deadline says so at once instead.
    """
    import urllib.error
    import urllib.request

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from airflow_provider_somlier.errors import InvalidArgumentError, RegistryUnavailableError

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InvalidArgumentError("no MLflow registry: pass --tracking_uri or set MLFLOW_TRACKING_URI")
    try:
        MlflowClient(tracking_uri=uri, registry_uri=uri)
    except MlflowException as exc:
        raise InvalidArgumentError(f"tracking URI {uri!r} is not one MLflow can use: {exc.message}") from None
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=REGISTRY_PROBE_SECONDS).close()
        except urllib.error.HTTPError:
            pass  # it answered; auth or a proxy path is MLflow's to report
        except (OSError, ValueError) as exc:
            raise RegistryUnavailableError(
                f"MLflow at {uri} did not answer within {REGISTRY_PROBE_SECONDS} s: {exc}"
            ) from None
    return uri


def _mlflow_client(tracking_uri: str | None):
    from mlflow import MlflowClient

    uri = _tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


_tracking_option = click.option(
    "--tracking_uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI)."
)


@main.command("search")
@click.argument("project_name")
@click.argument("standard_metric")
@click.argument("order_by")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", default=20, show_default=True, help="Runs to show.")
@_tracking_option
def search(project_name: str, standard_metric: str, order_by: str, output: str, limit: int, tracking_uri: str | None) -> None:
    """The runs of PROJECT_NAME ordered by STANDARD_METRIC (ASC or DESC), best first."""

    def action() -> None:
        import json

        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.registry import search_runs

        with work_output_to_stderr():
            runs = search_runs(_mlflow_client(tracking_uri), project_name, standard_metric, order_by, limit)
        if output == "json":
            click.echo(json.dumps([{"run_id": r.run_id, "metric_value": r.metric_value, "params": r.params} for r in runs]))
            return
        click.echo(f"{'run_id':<34} {standard_metric:>14}  params")
        for run in runs:
            params = ", ".join(f"{k}={v}" for k, v in sorted(run.params.items()))
            click.echo(f"{run.run_id:<34} {run.metric_value:>14.6g}  {params}")

    _run(_registry_errors(action))


@main.command("register")
@click.argument("run_id")
@click.argument("model_name")
@click.option("--standard_metric", default="training_mae", show_default=True, help="Metric deciding is_newer_version.")
@click.option("--order_by", default="ASC", show_default=True, help="ASC: lower is better; DESC: higher is better.")
@click.option("--alias", help="Move this alias (e.g. champion) to the new version when it beats the best one.")
@click.option("--artifact_path", default="model", show_default=True, help="Name of the run's logged model.")
@click.option("--training_data", help="A Parquet or CSV file of the training frame: its profile is logged with the run "
              "as the baseline of baseline='training'.")
@_tracking_option
def register(
    run_id: str, model_name: str, standard_metric: str, order_by: str, alias: str | None, artifact_path: str,
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

        client = _mlflow_client(tracking_uri)
        frame = None
        if training_data:  # read before registering: a bad file registers nothing
            from airflow_provider_somlier.quality.training import read_training_file

            frame = read_training_file(training_data)
        with work_output_to_stderr():
            answer = register_run(
                client, run_id, model_name, metric=standard_metric, order_by=order_by,
                artifact_path=artifact_path, alias=alias,
            )
            if frame is not None:
                from airflow_provider_somlier.quality.day_gate import TRAINING_PROFILE_PATH
                from airflow_provider_somlier.quality.training import training_profile

                client.log_dict(run_id, training_profile(frame).to_dict(), TRAINING_PROFILE_PATH)
                answer["training_profile"] = f"runs:/{run_id}/{TRAINING_PROFILE_PATH}"
        click.echo(json.dumps(answer))

    _run(_registry_errors(action))


@main.group()
def config() -> None:
    """Check and run a project's somlier.yaml."""


_config_option = click.option(
    "--file", "config_file", default="somlier.yaml", show_default=True, type=click.Path(dir_okay=False),
    help="The project's somlier.yaml.",
)


@config.command("show")
@click.option("-d", "--dependencies", is_flag=True, help="List requirements.txt instead of the settings.")
@_config_option
def config_show(dependencies: bool, config_file: str) -> None:
    """Print the project's settings (or, with -d, its dependencies)."""

    def action() -> None:
        from pathlib import Path

        from airflow_provider_somlier.lifecycle.config import describe, load_config

        path = Path(config_file).resolve()
        click.echo(describe(path, load_config(path), dependencies))

    _run(action)


@config.command("run")
@click.argument("entrypoint")
@_config_option
def config_run(entrypoint: str, config_file: str) -> None:
    """Run ENTRYPOINT from somlier.yaml in the project folder; print a JSON result line."""

    def action() -> None:
        from pathlib import Path

        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.config import BANNER, load_config, run_entrypoint

        path = Path(config_file).resolve()
        data = load_config(path)
        click.echo(BANNER, err=True)
        click.echo(f"Entrypoint: [{entrypoint}]", err=True)
        with work_output_to_stderr():
            returncode, line = run_entrypoint(path, data, entrypoint)
        click.echo(line)
        if returncode:
            sys.exit(1)

    _run(action)



@main.group()
def online() -> None:
    """Train and register models for online serving."""


@online.command("train", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("project_name")
@click.argument("project_ref")
@click.option(
    "--github_uri", required=True,
    help="Git repository of the MLflow Projects (https://, git@, file:// or a path); cloned, never modified.",
)
@click.option(
    "--max_parallel", default=2, show_default=True, type=click.IntRange(min=1), help="Combinations trained at the same time.",
)
@click.option("--max_combinations", default=256, show_default=True, help="Refuse grids larger than this.")
@_tracking_option
@click.pass_context
def online_train(
    ctx: click.Context, project_name: str, project_ref: str, github_uri: str, max_parallel: int,
    max_combinations: int, tracking_uri: str | None,
) -> None:
    """Train PROJECT_NAME at PROJECT_REF over a parameter grid, in parallel.

    The repository is cloned once into a temporary directory and PROJECT_REF resolved to one
    commit, recorded on every run. Grid flags: --NAME START..END..INCREMENT (END excluded), --NAME V1,V2, --NAME VALUE.
    """

    def action() -> None:
        from airflow_provider_somlier.errors import InvalidArgumentError
        from airflow_provider_somlier.lifecycle.grid import expand_grid
        from airflow_provider_somlier.lifecycle.train import train_grid

        specs, extra = {}, list(ctx.args)
        while extra:
            flag = extra.pop(0)
            if not flag.startswith("--") or len(flag) < 3:
                raise InvalidArgumentError(f"grid arguments come as --NAME VALUE pairs; got {flag!r}")
            name, equals, value = flag[2:].partition("=")
            if not equals:
                if not extra:
                    raise InvalidArgumentError(f"grid arguments come as --NAME VALUE pairs; {flag!r} has no value")
                value = extra.pop(0)
            specs[name] = value
        grid = expand_grid(specs, max_combinations=max_combinations)
        uri = _tracking_uri(tracking_uri)
        click.echo(f"training {len(grid)} combination(s), {max_parallel} at a time", err=True)
        results = train_grid(
            github_uri, project_name, project_ref, grid, uri, max_parallel=max_parallel,
            on_start=lambda c: click.echo(f"  {c.repository} {c.project_name} at {c.commit}", err=True),
            on_result=lambda r: click.echo(f"  {r.status:<9} {r.run_id or '-':<32} {r.params} {r.detail}", err=True),
        )
        failed = [r for r in results if r.status != "succeeded"]
        click.echo(f"{len(results) - len(failed)} succeeded, {len(failed)} failed")
        if failed:
            sys.exit(1)

    _run(_registry_errors(action))



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
@_tracking_option
def deploy(
    project_name: str, model_name: str, model_version: str, use_k8s_job: str, istio_enabled: str, image: str,
    namespace: str, mlflow_secret: str, cpu: str | None, memory: str | None, dry_run: bool, tracking_uri: str | None,
) -> None:
    """Serve MODEL_NAME version MODEL_VERSION with the online server on Kubernetes (create or update)."""

    def action() -> None:
        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.deploy import apply, check_version, manifests, to_yaml, validate
        from airflow_provider_somlier.window import parse_bool

        objects = manifests(
            project_name, model_name, model_version, image=image, namespace=namespace,
            use_k8s_job=parse_bool(use_k8s_job, field="--use_k8s_job"),
            istio_enabled=parse_bool(istio_enabled, field="--istio_enabled"),
            mlflow_secret=mlflow_secret, cpu=cpu, memory=memory,
        )
        validate(objects)
        with work_output_to_stderr():
            check_version(_mlflow_client(tracking_uri), model_name, model_version)
        if dry_run:
            click.echo(to_yaml(objects), nl=False)
            return
        for applied in apply(objects):
            click.echo(f"applied {applied}")

    _run(_registry_errors(action))



@online.command("register_v2")
@click.argument("model_type")
@click.argument("gcs_uri")
@click.argument("model_name")
@click.argument("github_uri", required=False, default="")
@click.argument("project_name", required=False, default="")
@click.argument("project_ref", required=False, default="")
@click.argument("model_module_path", required=False, default="")
@click.argument("model_class_name", required=False, default="")
@_tracking_option
def online_register_v2(
    model_type: str, gcs_uri: str, model_name: str, github_uri: str, project_name: str, project_ref: str,
    model_module_path: str, model_class_name: str, tracking_uri: str | None,
) -> None:
    """Register a model trained anywhere: MODEL_TYPE (sklearn|pytorch), its weights at GCS_URI, as MODEL_NAME.

    pytorch also needs GITHUB_URI PROJECT_NAME PROJECT_REF MODEL_MODULE_PATH MODEL_CLASS_NAME.
    """

    def action() -> None:
        import json

        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.register_v2 import register_v2

        with work_output_to_stderr():
            client = _mlflow_client(tracking_uri)
            registered = register_v2(
                model_type, gcs_uri, model_name, client.tracking_uri, github_uri=github_uri, project=project_name,
                ref=project_ref, module_path=model_module_path, class_name=model_class_name,
            )
        click.echo(json.dumps({"model_name": registered.name, "model_version": registered.version, "run_id": registered.run_id}))

    _run(_registry_errors(action))


if __name__ == "__main__":
    main()
