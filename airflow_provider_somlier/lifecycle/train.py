"""Run an MLflow Project once per combination of a parameter grid, in parallel.

Each combination is one ``mlflow run`` child process on the project at
``<github_uri>#<project_name>`` checked out at ``project_ref``; the tracking URI reaches
the child through its own environment, never through this process's. A failed
combination is reported and does not stop the others.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

_RUN_ID = re.compile(r"Run \(ID '([0-9a-f]+)'\)")


@dataclass(frozen=True)
class TrainResult:
    params: dict[str, object]
    run_id: str | None
    status: str  # "succeeded" | "failed"
    detail: str = ""


def train_one(uri: str, ref: str, project: str, params: dict[str, object], tracking_uri: str) -> TrainResult:
    command = [sys.executable, "-m", "mlflow", "run", uri, "--version", ref, "--env-manager", "local",
               "--experiment-name", project]
    for name, value in params.items():
        command += ["-P", f"{name}={value}"]
    # The project's command runs with this interpreter's environment first on PATH.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    match = _RUN_ID.search(done.stdout + done.stderr)
    if done.returncode == 0:
        return TrainResult(params, match[1] if match else None, "succeeded")
    # The project's own last words, not MLflow's "=== Run failed ===" line after them.
    own = [line for line in (done.stderr + done.stdout).splitlines() if line.strip() and "mlflow" not in line]
    return TrainResult(params, match[1] if match else None, "failed", (own[-1] if own else "")[:500])


def experiment_name(project_name: str) -> str:
    """Runs of ``example-projects/ridge`` go to experiment ``ridge`` (what ``somlier search`` takes)."""
    return project_name.rstrip("/").rsplit("/", 1)[-1] or "default"


def ensure_experiment(tracking_uri: str, experiment: str) -> None:
    """Create the store and the experiment once, up front: parallel children racing to do it fail."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment)


def train_grid(
    github_uri: str,
    project_name: str,
    project_ref: str,
    grid: list[dict[str, object]],
    tracking_uri: str,
    *,
    max_parallel: int = 2,
    on_result: Callable[[TrainResult], None] | None = None,
) -> list[TrainResult]:
    """Train every combination; results in completion order (``on_result`` sees each as it lands)."""
    uri = f"{github_uri}#{project_name}" if project_name else github_uri
    experiment = experiment_name(project_name)
    ensure_experiment(tracking_uri, experiment)
    results = []
    with ThreadPoolExecutor(max_workers=max_parallel) as pool:
        futures = [pool.submit(train_one, uri, project_ref, experiment, p, tracking_uri) for p in grid]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            if on_result:
                on_result(result)
    return results
