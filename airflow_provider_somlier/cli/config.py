"""``somlier config show|run``: a project's somlier.yaml."""

from __future__ import annotations

import sys

import click

from airflow_provider_somlier.cli.base import main, run_action


@main.group()
def config() -> None:
    """Check and run a project's somlier.yaml."""


config_option = click.option(
    "--file", "config_file", default="somlier.yaml", show_default=True, type=click.Path(dir_okay=False),
    help="The project's somlier.yaml.",
)


@config.command("show")
@click.option("-d", "--dependencies", is_flag=True, help="List requirements.txt instead of the settings.")
@config_option
def config_show(dependencies: bool, config_file: str) -> None:
    """Print the project's settings (or, with -d, its dependencies)."""

    def action() -> None:
        from pathlib import Path

        from airflow_provider_somlier.lifecycle.config import describe, load_config

        path = Path(config_file).resolve()
        click.echo(describe(path, load_config(path), dependencies))

    run_action(action)


@config.command("run")
@click.argument("entrypoint")
@config_option
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

    run_action(action)
