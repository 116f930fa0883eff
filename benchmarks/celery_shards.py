"""A sharded day on real schedulers: 2 shards against 1, and the queued → running latency, Celery against Local.

The same two DAGs — ``sharded_offline`` with ``shards=1`` and ``shards=2`` over one day of
``--rows`` rows, scored by a HistGradientBoostingRegressor (100 iterations, CPU-bound) —
run on two Airflows one after the other, each started by the project's devtools:

* ``celery`` -- PostgreSQL, Redis, CeleryExecutor, ``worker-a`` and ``worker-b`` with one
  slot each (two cores, one shard per core);
* ``local``  -- LocalExecutor on SQLite with parallelism 2 (the demo's Airflow).

Every task runs with ``OMP_NUM_THREADS=1``. For each run: the run's wall time, the
*score span* (first score task started → last score task ended: what sharding
shortens, process start and model load included) and, for every task instance of every
run, the scheduling latency ``queued_when → start_date`` (the executor handing the task
to a worker and the worker starting it). Each DAG runs ``--repeat`` times per executor
(cleared between runs); the best score span is reported. *Data path* is each score task's
own phase timings (its XCom) less the registry lookup and the model load — read, predict,
stage, load — for the slowest shard of the run, best of the runs: the measure
``offline_sharded.py`` reports, free of the task process's start and imports.

Usage: ``.venv/bin/python benchmarks/celery_shards.py [--rows 1000000] [--repeat 2]``
Prints a table; copy it into benchmarks/README.md with the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DAY = dt.date(2026, 11, 19)
LOGICAL_DATE = "2026-11-20T03:00:00Z"  # 12:00 KST → target day 2026-11-19
MODEL = "bench-hgb"
FIXED_PHASES = ("registry", "model_load")  # paid once per task process, whatever the shard's size
DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from airflow_provider_somlier.operators.sharded import sharded_offline

with DAG({dag_id!r}, schedule=None, start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc), catchup=False) as dag:
    sharded_offline("predict", shards={shards}, model_ref={model!r}, dataset_ref={features!r},
                    dataset_load_column="load_date", destination_table_ref={destination!r},
                    passthrough_columns=["row_id"], retries=0, quality_profile=False)
"""


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _run_once(airflow, session, dag_id: str, first: bool) -> dict:
    """Trigger (or clear) the DAG's one run, wait for it, measure it."""
    url = airflow.url
    if first:
        response = session.post(f"{url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": LOGICAL_DATE}, timeout=30)
        response.raise_for_status()
        run_id = response.json()["dag_run_id"]
    else:
        run_id = session.get(f"{url}/api/v2/dags/{dag_id}/dagRuns", timeout=30).json()["dag_runs"][0]["dag_run_id"]
        for _ in range(30):
            cleared = session.post(f"{url}/api/v2/dags/{dag_id}/clearTaskInstances", timeout=30,
                                   json={"dag_run_id": run_id, "dry_run": False, "only_failed": False})
            if cleared.status_code == 200:
                break
            time.sleep(1)
        time.sleep(3)
    runs = airflow.wait_runs(session, dag_id, 1, no_progress_seconds=300)
    run = next(r for r in runs if r["dag_run_id"] == run_id)
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} {run_id} ended {run['state']}; logs in {airflow.home / 'logs'}")
    tis = session.get(f"{url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100},
                      timeout=30).json()["task_instances"]
    scores = [ti for ti in tis if ti["task_id"] == "predict.score"]
    data_paths = [_shard_data_path(session, url, dag_id, run_id, ti["map_index"]) for ti in scores]
    latencies = [(_when(ti["start_date"]) - _when(ti["queued_when"])).total_seconds()
                 for ti in tis if ti.get("queued_when") and ti.get("start_date")]
    return {
        "run_s": (_when(run["end_date"]) - _when(run["start_date"])).total_seconds(),
        "score_span_s": (max(_when(t["end_date"]) for t in scores) - min(_when(t["start_date"]) for t in scores)
                         ).total_seconds(),
        "shards": len(scores),
        "data_path_s": max(data_paths),
        "hosts": sorted({t.get("hostname") or "-" for t in scores}),
        "latencies": latencies,
    }


def _shard_data_path(session, url: str, dag_id: str, run_id: str, map_index: int) -> float:
    """A score task's seconds outside the registry and the model load, from the phases it returned."""
    xcom = session.get(f"{url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/predict.score/xcomEntries/"
                       "return_value", params={"map_index": map_index, "deserialize": True}, timeout=30)
    xcom.raise_for_status()
    phases = xcom.json()["value"]["phases"]
    return sum(seconds for phase, seconds in phases.items() if phase not in FIXED_PHASES)


def _measure(airflow, dag_ids: dict[int, str], repeat: int, label: str) -> dict[int, dict]:
    session = airflow.session()
    for dag_id in dag_ids.values():
        deadline = time.monotonic() + 180
        while session.get(f"{airflow.url}/api/v2/dags/{dag_id}", timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} was not parsed within 180 s")
            time.sleep(1)
        session.patch(f"{airflow.url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=10).raise_for_status()
    results = {}
    for shards, dag_id in dag_ids.items():
        runs = []
        for attempt in range(repeat):
            measured = _run_once(airflow, session, dag_id, first=attempt == 0)
            print(f"  {label:<7} shards={shards} run {measured['run_s']:6.1f}s score span {measured['score_span_s']:6.1f}s "
                  f"data path {measured['data_path_s']:5.1f}s "
                  f"on {','.join(measured['hosts'])}", file=sys.stderr, flush=True)
            runs.append(measured)
        best = min(runs, key=lambda r: r["score_span_s"])
        results[shards] = best | {"latencies": [x for r in runs for x in r["latencies"]],
                                  "data_path_s": min(r["data_path_s"] for r in runs)}
    return results


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--executors", nargs="+", default=["celery", "local"], choices=["celery", "local"])
    args = parser.parse_args()

    from airflow_provider_somlier.devtools.airflow_celery import running_celery_airflow
    from airflow_provider_somlier.devtools.airflow_local import local_connections, running_airflow
    from airflow_provider_somlier.devtools.emulator import running_emulator
    from airflow_provider_somlier.devtools.sample_data import load_features

    workdir = Path(tempfile.mkdtemp(prefix="somlier-bench-celery-"))
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    from airflow_provider_somlier.devtools.sample_model import train_and_register_hgb

    train_and_register_hgb(tracking, MODEL, artifact_root=(workdir / "artifacts").as_uri())
    load_before = os.getloadavg()
    results: dict[str, dict[int, dict]] = {}
    with running_emulator(workdir / "bqemulator.log") as emulator:
        os.environ.update(local_connections(emulator, tracking) | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

        client = SomlierBigQueryHook().client()
        features = f"{emulator.project}.bench.features_{args.rows}"
        client.create_dataset(f"{emulator.project}.bench", exists_ok=True)
        load_features(client, features, [DAY], args.rows)
        for executor in args.executors:
            dags = workdir / f"dags-{executor}"
            dags.mkdir()
            dag_ids = {}
            for shards in (1, 2):
                dag_ids[shards] = f"bench_{executor}_{shards}_shards"
                (dags / f"{dag_ids[shards]}.py").write_text(DAG_FILE.format(
                    dag_id=dag_ids[shards], shards=shards, model=f"{MODEL}/1", features=features,
                    destination=f"{emulator.project}.bench.out_{executor}_{shards}"))
            if executor == "celery":
                started = running_celery_airflow(workdir / "celery", dags, concurrency=1)
            else:
                started = running_airflow(workdir / "local", dags, extra_env={"AIRFLOW__CORE__PARALLELISM": "2"})
            with started as airflow:
                results[executor] = _measure(airflow, dag_ids, args.repeat, executor)

    print(f"\n{args.rows:,} rows, HGB (100 iterations), OMP_NUM_THREADS=1, best score span of {args.repeat} runs; "
          f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs\n")
    print("| executor | shards | workers that ran shards | run s | score span s | 2 shards vs 1 (score span) "
          "| slowest shard's data path s | 2 shards vs 1 (data path) | queued → running median s | p95 s "
          "| task instances |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for executor, by_shards in results.items():
        latencies = [x for r in by_shards.values() for x in r["latencies"]]
        for shards, r in by_shards.items():
            speedup = (f"{by_shards[1]['score_span_s'] / r['score_span_s']:.2f}×"
                       if shards == 2 and 1 in by_shards else "")
            path_speedup = (f"{by_shards[1]['data_path_s'] / r['data_path_s']:.2f}×"
                            if shards == 2 and 1 in by_shards else "")
            print(f"| {executor} | {shards} | {', '.join(r['hosts'])} | {r['run_s']:.1f} | {r['score_span_s']:.1f} "
                  f"| {speedup} | {r['data_path_s']:.1f} | {path_speedup} | {statistics.median(latencies):.2f} "
                  f"| {_p95(latencies):.2f} | {len(latencies)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
