"""Training a grid: SoMLier's combinations against one ``mlflow run`` per combination.

A git repository holds an MLproject that fits a Ridge on the diabetes data and logs a
metric and the model, as MLflow 3's docs write a training script. The same combinations
are trained twice, one at a time so that CPU seconds are not shared:

- ``somlier``: ``train_grid`` (the entry point's command, run by SoMLier in the project's folder);
- ``mlflow run``: ``python -m mlflow run <project> --env-manager local -P alpha=…`` per
  combination, which is how SoMLier trained before and how a hand-written grid does.

Prints wall and CPU seconds (this process's and its children's, from ``getrusage``) per combination.

    .venv/bin/python benchmarks/train_grid.py --combinations 4
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MLPROJECT = """name: ridge
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 1.0}
    command: "python train.py {alpha}"
"""
TRAIN = """import sys
import mlflow
import sklearn
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error

X, y = load_diabetes(return_X_y=True, as_frame=True)
with mlflow.start_run():
    model = Ridge(alpha=float(sys.argv[1])).fit(X, y)
    mlflow.log_metric("training_mae", mean_absolute_error(y, model.predict(X)))
    mlflow.sklearn.log_model(model, name="model", pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
"""


def project_repo(root: Path) -> Path:
    repo = root / "projects"
    (repo / "ridge").mkdir(parents=True)
    (repo / "ridge" / "MLproject").write_text(MLPROJECT)
    (repo / "ridge" / "train.py").write_text(TRAIN)
    git = ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "ridge"], check=True)
    return repo


def cpu_seconds() -> float:
    """This process's CPU and its finished children's: SoMLier creates the runs in-process."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def measure(run) -> tuple[float, float]:
    cpu, wall = cpu_seconds(), time.monotonic()
    run()
    return time.monotonic() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--combinations", type=int, default=4)
    args = parser.parse_args()
    from airflow_provider_somlier.lifecycle.train import train_grid

    alphas = [0.1 * (i + 1) for i in range(args.combinations)]
    with tempfile.TemporaryDirectory(prefix="somlier-bench-train-") as folder:
        root = Path(folder)
        repo = project_repo(root)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        os.chdir(root)  # a SQLite store keeps run artifacts under ./mlruns
        train_grid(str(repo), "ridge", "main", [{"alpha": 9.0}], uri)  # the store's tables, created once

        def somlier() -> None:
            results = train_grid(str(repo), "ridge", "main", [{"alpha": a} for a in alphas], uri, max_parallel=1)
            assert all(r.status == "succeeded" for r in results), results

        def mlflow_run() -> None:
            env = os.environ | {"MLFLOW_TRACKING_URI": uri,
                                "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
            for alpha in alphas:
                subprocess.run([sys.executable, "-m", "mlflow", "run", str(repo / "ridge"), "--env-manager", "local",
                                "--experiment-name", "ridge", "-P", f"alpha={alpha}"],
                               env=env, check=True, capture_output=True)

        rows = [("somlier", *measure(somlier)), ("mlflow run", *measure(mlflow_run))]
    print("| way | combinations | wall s | CPU s | wall s / combination | CPU s / combination |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, wall, cpu in rows:
        n = args.combinations
        print(f"| {name} | {n} | {wall:.1f} | {cpu:.1f} | {wall / n:.2f} | {cpu / n:.2f} |")


if __name__ == "__main__":
    main()
