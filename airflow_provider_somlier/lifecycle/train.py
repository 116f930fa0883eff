"""Run an MLflow Project once per combination of a parameter grid, in parallel.

The repository is cloned once per grid at one resolved commit (see ``checkout``), and
each combination is one ``mlflow run`` child process on that clone. SoMLier creates each
combination's run itself, before the child starts, tagged with the repository, the
commit and the project: every run records what it trained, and a combination whose
child dies early still has a run that says FAILED and why. The tracking URI reaches the
child through its own environment, never through this process's. A failed combination
is reported and does not stop the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from airflow_provider_somlier.errors import InvalidArgumentError, RegistryUnavailableError
from airflow_provider_somlier.lifecycle.checkout import Checkout, project_checkout

#: Tags every training run carries (MLflow's own names for the first two, so its UI shows them).
COMMIT_TAG = "mlflow.source.git.commit"
REPOSITORY_TAG = "mlflow.source.git.repoURL"
PROJECT_TAG = "somlier.project"
FAILURE_TAG = "somlier.failure"


@dataclass(frozen=True)
class TrainResult:
    params: dict[str, object]
    run_id: str | None
    status: str  # "succeeded" | "failed"
    detail: str = ""
    commit: str = ""


def run_label(params: dict[str, object]) -> str:
    """``alpha=0.5 l1_ratio=0.1``: the run name and the mapped task's label."""
    return " ".join(f"{name}={value}" for name, value in sorted(params.items())) or "defaults"


def _last_words(output: str) -> str:
    """The project's own last line, not MLflow's "=== Run failed ===" line after it."""
    own = [line for line in output.splitlines() if line.strip() and "mlflow" not in line.lower()]
    return (own[-1] if own else output.strip()[-500:])[:500]


def _run_params(checkout: Checkout, params: dict[str, object]) -> dict[str, object]:
    """The entry point's declared defaults overlaid with the combination: what ``mlflow run`` would log."""
    try:
        from mlflow.projects.utils import load_project

        declared = load_project(str(checkout.project_dir)).get_entry_point("main").parameters
    except Exception:  # noqa: BLE001 - a broken MLproject fails the child run, which says why
        declared = {}
    defaults = {name: spec.default for name, spec in declared.items() if spec.default is not None}
    return defaults | params


def train_one(
    checkout: Checkout, experiment_id: str, params: dict[str, object], tracking_uri: str,
    *, timeout_seconds: float | None = None,
) -> TrainResult:
    """Train one combination on the checkout; the run is created here, so it exists whatever happens."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.create_run(experiment_id, run_name=run_label(params), tags={
        COMMIT_TAG: checkout.commit, REPOSITORY_TAG: checkout.repository, PROJECT_TAG: checkout.project_name,
    })
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in _run_params(checkout, params).items()])
    command = [sys.executable, "-m", "mlflow", "run", str(checkout.project_dir), "--env-manager", "local",
               "--experiment-id", experiment_id, "--run-id", run_id]
    for name, value in params.items():
        command += ["-P", f"{name}={value}"]
    # The project's command runs with this interpreter's environment first on PATH.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_seconds)
        returncode, output = done.returncode, done.stderr + done.stdout
    except subprocess.TimeoutExpired:
        returncode, output = -1, f"training did not finish within {timeout_seconds} s"
    if returncode == 0:
        return TrainResult(params, run_id, "succeeded", commit=checkout.commit)
    detail = _last_words(output)
    if client.get_run(run_id).info.status in ("RUNNING", "SCHEDULED"):
        client.set_terminated(run_id, "FAILED")
    client.set_tag(run_id, FAILURE_TAG, detail)
    return TrainResult(params, run_id, "failed", detail, checkout.commit)


def experiment_name(project_name: str) -> str:
    """Runs of ``example-projects/ridge`` go to experiment ``ridge`` (what ``somlier search`` takes)."""
    return project_name.rstrip("/").rsplit("/", 1)[-1] or "default"


def ensure_experiment(tracking_uri: str, experiment: str) -> str:
    """The experiment's id, creating it if needed; safe when parallel tasks race to create it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            try:
                return client.create_experiment(experiment)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(exc):
                    raise
                found = client.get_experiment_by_name(experiment)
    except MlflowException as exc:
        if exc.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
            raise InvalidArgumentError(f"tracking URI {tracking_uri!r} was refused: {exc.message}") from None
        raise RegistryUnavailableError(f"MLflow at {tracking_uri} failed: {exc.message}") from None
    if found is None:
        raise RegistryUnavailableError(f"experiment {experiment!r} vanished while being created at {tracking_uri}")
    if found.lifecycle_stage != "active":
        raise InvalidArgumentError(
            f"experiment {experiment!r} is deleted in {tracking_uri}: restore it (mlflow experiments restore) "
            "or train under another project name"
        )
    return found.experiment_id


def train_grid(
    github_uri: str,
    project_name: str,
    project_ref: str,
    grid: list[dict[str, object]],
    tracking_uri: str,
    *,
    max_parallel: int = 2,
    on_start: Callable[[Checkout], None] | None = None,
    on_result: Callable[[TrainResult], None] | None = None,
    on_training: Callable[[dict[str, object]], None] | None = None,
) -> list[TrainResult]:
    """Train every combination on one clone at one commit; results in completion order.

    ``on_training(params)`` is called as a combination leaves the queue and starts training,
    so a caller can tell a combination that waits for a slot from one that runs.
    """
    if not isinstance(max_parallel, int) or isinstance(max_parallel, bool) or max_parallel < 1:
        raise InvalidArgumentError(f"max_parallel {max_parallel!r} must be an integer of at least 1")
    results = []
    with project_checkout(github_uri, project_ref, project_name) as checkout:
        experiment_id = ensure_experiment(tracking_uri, experiment_name(project_name))
        if on_start:
            on_start(checkout)
        def train(params: dict[str, object]) -> TrainResult:
            if on_training:
                on_training(params)
            return train_one(checkout, experiment_id, params, tracking_uri)

        with ThreadPoolExecutor(max_workers=max_parallel) as pool:
            futures = [pool.submit(train, p) for p in grid]
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                if on_result:
                    on_result(result)
    return results
