"""Registry lookup + model load in a task process: as it was, with the host cache cold, and warm.

Each measurement is a fresh process that imports ``airflow.sdk`` first (a task process has),
then times ``MLflowHook.resolve`` + ``load_pyfunc`` of a scikit-learn model saved the MLflow 3
way (skops format), against a SQLite registry:

* ``before``  -- skops imported as published (probing every loaded module, Airflow's
  deprecation shims included) and the version downloaded into a temporary folder: what
  every task paid before the host cache;
* ``cold``    -- the host cache empty: the first task on a host downloads the version;
* ``warm``    -- the version already in the host cache: every later task on the host;
* ``preloaded`` -- warm, in a task forked from a worker that ran
  ``airflow_provider_somlier.preload.preload_for_tasks()`` (``airflow_local_settings.py``):
  the imports were paid once by the worker, before the task.

Runs are interleaved (before, cold, warm, before, …) so the machine's load falls on all
alike; the median of ``--repeat`` is shown. Usage:
``.venv/bin/python benchmarks/model_load.py [--repeat 5]`` (the sample Ridge model)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = """
import json, os, sys, time, warnings
import airflow.sdk  # paid by every task process before the task starts
if sys.argv[1] == "preloaded":
    from airflow_provider_somlier.preload import preload_for_tasks
    preload_for_tasks(force=True)  # the worker's, before it forks the task
started = time.perf_counter()
if sys.argv[1] == "before":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import skops.io  # as published: the quick import then has nothing to do
from airflow_provider_somlier.hooks.mlflow import MLflowHook
hook = MLflowHook()
resolved = hook.resolve(sys.argv[2])
registry = time.perf_counter() - started
hook.load_pyfunc(resolved)
print(json.dumps({"registry": registry, "total": time.perf_counter() - started}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from airflow_provider_somlier.devtools.sample_model import train_and_register

    workdir = Path(tempfile.mkdtemp(prefix="somlier-bench-model-"))
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    train_and_register(tracking, "bench-model", artifact_root=(workdir / "artifacts").as_uri())
    base_env = os.environ | {
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": tracking}),
        "OPENBLAS_NUM_THREADS": "1",
    }
    cache = workdir / "model-cache"
    runs: dict[str, list[dict]] = {"before": [], "cold": [], "warm": [], "preloaded": []}
    for _ in range(args.repeat):
        for kind in runs:
            env = dict(base_env)
            if kind == "before":
                env["AIRFLOW__SOMLIER__MODEL_CACHE_MAX_GB"] = "0"  # a temporary folder per task, as before
            if kind == "cold":
                shutil.rmtree(cache, ignore_errors=True)
            env["AIRFLOW__SOMLIER__MODEL_CACHE_DIR"] = str(cache)
            out = subprocess.run(
                [sys.executable, "-c", WORKER, kind, "bench-model/1"], env=env, capture_output=True, text=True,
                timeout=600,
            )
            if out.returncode:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {kind:<6} {runs[kind][-1]['total']:.2f} s", file=sys.stderr)
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    print("\n| task process | registry s | registry + model load s (median) | min | max |\n|---|---:|---:|---:|---:|")
    for kind, results in runs.items():
        totals = [r["total"] for r in results]
        print(f"| {kind} | {statistics.median(r['registry'] for r in results):.2f} | {statistics.median(totals):.2f} "
              f"| {min(totals):.2f} | {max(totals):.2f} |")
    before = statistics.median(r["total"] for r in runs["before"])
    for kind in ("cold", "warm", "preloaded"):
        print(f"\n{kind}: {statistics.median(r['total'] for r in runs[kind]) / before:.2f}x of before", end="")
    print()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    sys.exit(code)
