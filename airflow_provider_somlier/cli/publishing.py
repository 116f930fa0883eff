"""What every DAG generator does with the file it rendered: print it, lint it, publish it."""

from __future__ import annotations

from collections.abc import Callable

import click

from airflow_provider_somlier.cli.base import TOKEN_ENV, say


def deliver(
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
        say(f"# dry run: would lint the file, then {plan}", err=True, secrets=(token or "",))
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
    if isinstance(publisher, LocalGitPublisher):
        publisher.check()
    say(f"linting {dag_id}.py with Airflow's DagBag ...", err=True)
    lint()
    published = publisher.publish(dag_id, source, description)
    say(f"{published.action}: {published.location}", secrets=(token or "",))
    if check_airflow:
        from airflow_provider_somlier.generate.airflow_check import AirflowCheckError

        say(f"waiting for Airflow at {settings.airflow_api_url} to list {dag_id} ...", err=True)
        try:
            record = wait_for_dag(dag_id, f"{dag_id}.py", settings)
        except AirflowCheckError as exc:
            raise AirflowCheckError(
                f"{exc} (the DAG file was {published.action} all the same: {published.location}; "
                "SOMLIER_AIRFLOW_API_URL names the Airflow API that --check_airflow asks)"
            ) from None
        say(f"Airflow lists {dag_id} (paused: {record.get('is_paused')})")


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
