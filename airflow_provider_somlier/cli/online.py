"""``somlier online train|register_v2``: models for online serving."""

from __future__ import annotations

import sys

import click

from airflow_provider_somlier.cli.base import main, run_action
from airflow_provider_somlier.cli.registry_options import (
    mlflow_client,
    registry_errors,
    tracking_option,
    tracking_uri_checked,
)


@main.group()
def online() -> None:
    """Train and register models for online serving."""


OWN_TRAIN_OPTIONS = ("github_uri", "max_parallel", "max_combinations", "tracking_uri")


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
@tracking_option
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
        import difflib

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
            own = difflib.get_close_matches(name.replace("-", "_"), OWN_TRAIN_OPTIONS, n=1, cutoff=0.8)
            if own:  # a misspelt option of this command would otherwise become a grid parameter
                raise InvalidArgumentError(
                    f"--{name} looks like a misspelt option of `somlier online train`: did you mean --{own[0]}? "
                    "(options are spelt with underscores; nothing was trained)"
                )
            if name in specs:  # the last one would silently win: a grid is one list per parameter
                raise InvalidArgumentError(
                    f"--{name} is given twice ({specs[name]!r} and {value!r}); give its values once, e.g. "
                    f"--{name} '{specs[name]},{value}'"
                )
            specs[name] = value
        grid = expand_grid(specs, max_combinations=max_combinations)
        uri = tracking_uri_checked(tracking_uri)
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

    run_action(registry_errors(action))


@online.command("register_v2")
@click.argument("model_type")
@click.argument("gcs_uri")
@click.argument("model_name")
@click.argument("github_uri", required=False, default="")
@click.argument("project_name", required=False, default="")
@click.argument("project_ref", required=False, default="")
@click.argument("model_module_path", required=False, default="")
@click.argument("model_class_name", required=False, default="")
@click.option("--training_data", help="A Parquet or CSV file of the training frame: its profile is logged with the "
              "version's run as the baseline of baseline='training'.")
@tracking_option
def online_register_v2(
    model_type: str, gcs_uri: str, model_name: str, github_uri: str, project_name: str, project_ref: str,
    model_module_path: str, model_class_name: str, training_data: str | None, tracking_uri: str | None,
) -> None:
    """Register a model trained anywhere: MODEL_TYPE (sklearn|pytorch), its weights at GCS_URI, as MODEL_NAME.

    pytorch also needs GITHUB_URI PROJECT_NAME PROJECT_REF MODEL_MODULE_PATH MODEL_CLASS_NAME.
    """

    def action() -> None:
        import json

        from airflow_provider_somlier.answer_stdout import work_output_to_stderr
        from airflow_provider_somlier.lifecycle.register_v2 import register_v2

        frame = None
        if training_data:  # read before registering: a bad file registers nothing
            from airflow_provider_somlier.quality.training import read_training_file

            frame = read_training_file(training_data)
        with work_output_to_stderr():
            client = mlflow_client(tracking_uri)
            registered = register_v2(
                model_type, gcs_uri, model_name, client.tracking_uri, github_uri=github_uri, project=project_name,
                ref=project_ref, module_path=model_module_path, class_name=model_class_name,
                training_columns=frame.column_names if frame is not None else None,
            )
            answer = {"model_name": registered.name, "model_version": registered.version, "run_id": registered.run_id}
            if frame is not None:
                from airflow_provider_somlier.quality.training import log_profile_with_run

                answer["training_profile"] = log_profile_with_run(client, registered.run_id, frame)
        click.echo(json.dumps(answer))

    run_action(registry_errors(action))
