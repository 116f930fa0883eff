"""Run an MLflow Project once per combination of a parameter grid, in parallel.

The repository is cloned once per grid at one resolved commit (see ``checkout``), and
each combination runs the project's ``main`` entry point on that clone, as ``mlflow run
--env-manager local`` would: the command MLflow computes from the MLproject, in the
project's folder, with ``MLFLOW_RUN_ID``/``MLFLOW_EXPERIMENT_ID``/``MLFLOW_TRACKING_URI``
set, and the run marked FINISHED or FAILED by its exit code. SoMLier runs that command
itself rather than through an ``mlflow run`` interpreter, which would import MLflow once
more per combination (~3 s of CPU) only to start the same command. SoMLier creates each
combination's run itself, before the child starts, tagged with the repository, the
commit and the project: every run records what it trained, and a combination whose
child dies early still has a run that says FAILED and why. The tracking URI reaches the
child through its own environment, never through this process's. A failed combination
is reported and does not stop the others.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

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


#: What MLflow prints on its own in a project's output: its log lines and its run links.
_MLFLOW_NOTICE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING) mlflow|^(🏃|🧪) View ")


def _last_words(output: str) -> str:
    """The project's own last line (its error), not a notice MLflow printed after it."""
    own = [line for line in output.splitlines() if line.strip() and not _MLFLOW_NOTICE.match(line)]
    return (own[-1] if own else output.strip()[-500:])[:500]


ENTRY_POINT = "main"


def _entry_point(checkout: Checkout) -> Any:
    """The project's ``main`` entry point as MLflow reads the MLproject (or a project without one)."""
    from mlflow.projects.utils import load_project

    return load_project(str(checkout.project_dir)).get_entry_point(ENTRY_POINT)


def _run_params(entry_point: Any, params: dict[str, object]) -> dict[str, object]:
    """The entry point's declared defaults overlaid with the combination: what ``mlflow run`` would log."""
    declared = entry_point.parameters if entry_point is not None else {}
    defaults = {name: spec.default for name, spec in declared.items() if spec.default is not None}
    return defaults | params


def _run_command(command: str, cwd: str, env: dict[str, str], timeout_seconds: float | None) -> tuple[int, str]:
    """Run ``command`` under bash; when the wait ends early, the command's whole process tree goes with it.

    On a timeout, and on anything that interrupts the wait (Airflow's ``execution_timeout``,
    a SIGTERM turned into an exception), the project's processes are killed: a training
    left running would hold the worker's CPU with no task to account for it. The command
    stays in the caller's process group, so Ctrl-C at a terminal and a kill of the task's
    group reach it as they reach the caller.
    """
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout_seconds)
    except BaseException as interrupted:
        _kill_tree(process.pid)
        process.communicate()
        if isinstance(interrupted, subprocess.TimeoutExpired):
            return -1, f"training did not finish within {timeout_seconds} s"
        raise
    return process.returncode, output


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it, the children first found before any dies."""
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def train_one(
    checkout: Checkout, experiment_id: str, params: dict[str, object], tracking_uri: str,
    *, timeout_seconds: float | None = None,
) -> TrainResult:
    """Train one combination on the checkout; the run is created here, so it exists whatever happens."""
    import tempfile

    from mlflow import MlflowClient
    from mlflow.entities import Param

    try:
        entry_point, broken = _entry_point(checkout), None
    except Exception as exc:  # noqa: BLE001 - MLflow's ExecutionException names what is wrong with the MLproject
        entry_point, broken = None, exc
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.create_run(experiment_id, run_name=run_label(params), tags={
        COMMIT_TAG: checkout.commit, REPOSITORY_TAG: checkout.repository, PROJECT_TAG: checkout.project_name,
        "mlflow.source.type": "PROJECT", "mlflow.project.entryPoint": ENTRY_POINT,
    })
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in _run_params(entry_point, params).items()])
    # The project's command runs with this interpreter's environment first on PATH.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_RUN_ID": run_id,
                        "MLFLOW_EXPERIMENT_ID": str(experiment_id), "PATH": path}
    with tempfile.TemporaryDirectory(prefix="somlier-train-") as storage_dir:  # where `path` parameters download
        try:
            if broken is not None:
                raise broken
            command = entry_point.compute_command({k: str(v) for k, v in params.items()}, storage_dir)
        except Exception as exc:  # noqa: BLE001 - MLflow's ExecutionException names the bad parameter or file
            returncode, output = 1, f"{type(exc).__name__}: {exc}"
        else:
            returncode, output = _run_command(command, str(checkout.project_dir), env, timeout_seconds)
    status = "FINISHED" if returncode == 0 else "FAILED"
    if client.get_run(run_id).info.status != status:
        client.set_terminated(run_id, status)
    if returncode == 0:
        return TrainResult(params, run_id, "succeeded", commit=checkout.commit)
    detail = _last_words(output)
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


def _refuse_misspelt_parameters(checkout: Checkout, project_name: str, grid: list[dict[str, object]]) -> None:
    """Refuse a grid parameter the MLproject does not declare when it is close to one it does
    (``--alpah`` for ``alpha``): MLflow would append it to the command, every run would fail on
    it, and each failure would be logged as a run. Other undeclared names pass, as in ``mlflow run``."""
    import difflib

    try:
        entry_point = _entry_point(checkout)
    except Exception:  # noqa: BLE001 - a broken MLproject is reported by each run, by MLflow's words
        return
    declared = list(entry_point.parameters) if entry_point is not None else []
    for name in grid[0] if grid else {}:
        close = difflib.get_close_matches(name, declared, n=1, cutoff=0.75) if name not in declared else []
        if close:
            raise InvalidArgumentError(
                f"--{name} is not a parameter of {project_name}'s {ENTRY_POINT} entry point; did you mean "
                f"--{close[0]}? (its MLproject declares {', '.join(declared)}; nothing was trained)"
            )


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
        _refuse_misspelt_parameters(checkout, project_name, grid)
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
