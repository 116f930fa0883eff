"""Offline inference throughput and peak memory, side by side, on the local emulator.

Pipelines, each run in a fresh process (so peak RSS is its own) over one target day:

* ``operator`` -- MLOpsOfflineOperator.execute: Storage Read → predict per chunk →
  Parquet → load → one transaction replacing the day, lineage and schema checks included,
  with the day's profile and quality gate (the default);
* ``operator_noprofile`` -- the same with ``quality_profile=False``: what profiling costs;
* ``naive``    -- what a hand-written DAG body does: query → ``to_dataframe()`` →
  predict → ``insert_rows_json``;
* ``raw_read`` -- a Storage Read of the same columns and nothing else (the ceiling).

Usage: ``.venv/bin/python benchmarks/offline.py [--rows 100000 1000000] [--pipelines ...] [--repeat 3]``
Repeats are interleaved (pipeline A, B, A, B…) so that a shared machine's load falls on all
of them alike. Prints a table; copy it into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DAY = dt.date(2026, 11, 20)
RUN_AT = dt.datetime(2026, 11, 21, 0, 0, tzinfo=dt.timezone.utc)  # KST 11-21 → target 11-20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(pipeline: str, rows: int, project: str) -> dict:
    from airflow_provider_somlier.devtools.sample_model import FEATURES
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

    source = f"{project}.bench.features_{rows}"
    destination = f"{project}.bench.out_{pipeline}_{rows}"
    hook = SomlierBigQueryHook()
    client = hook.client()
    client.delete_table(destination, not_found_ok=True)
    # The profile table stays, as it does between a destination's daily runs (created once).
    # Imports are paid once per worker process whatever the pipeline; time the work.
    # (the model itself is loaded inside the timed section by every pipeline).
    import mlflow.pyfunc  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import airflow_provider_somlier.hooks.mlflow  # noqa: F401
    import airflow_provider_somlier.operators  # noqa: F401
    import airflow_provider_somlier.scoring  # noqa: F401

    started = time.perf_counter()
    model_load = 0.0
    if pipeline in ("operator", "operator_noprofile"):
        from types import SimpleNamespace

        from airflow_provider_somlier.operators import MLOpsOfflineOperator

        summary = MLOpsOfflineOperator(
            task_id="predict",
            model_ref="bench-ridge/1",
            dataset_ref=source,
            dataset_load_column="load_date",
            destination_table_ref=destination,
            passthrough_columns=["row_id"],
            quality_profile=pipeline == "operator",
        ).execute({"ti": SimpleNamespace(dag_id="bench"), "run_id": "bench", "logical_date": RUN_AT})
        written = summary["rows_written"]
        model_load = summary["model_seconds"]
    elif pipeline == "naive":
        import mlflow.pyfunc

        loading = time.perf_counter()
        model = mlflow.pyfunc.load_model(os.environ["BENCH_MODEL_PATH"], suppress_warnings=True)
        model_load = time.perf_counter() - loading
        frame = client.query(f"SELECT * FROM `{source}` WHERE load_date = DATE '{DAY}'").result().to_dataframe(create_bqstorage_client=False)
        frame["prediction"] = model.predict(frame[list(FEATURES)])
        out = frame[["row_id", "prediction"]].assign(target_date=DAY.isoformat())
        from google.cloud import bigquery

        client.create_table(
            bigquery.Table(
                destination,
                schema=[
                    bigquery.SchemaField("row_id", "INT64"),
                    bigquery.SchemaField("prediction", "FLOAT64"),
                    bigquery.SchemaField("target_date", "DATE"),
                ],
            )
        )
        records = out.to_dict("records")
        for start in range(0, len(records), 10_000):
            errors = client.insert_rows_json(destination, records[start : start + 10_000])
            assert not errors, errors[:3]
        written = len(records)
    elif pipeline == "raw_read":
        written = sum(
            b.num_rows
            for b in hook.read_batches(
                hook_ref(source, project), ["row_id", *FEATURES], f"load_date = DATE '{DAY}'"
            )
        )
    else:
        raise SystemExit(f"unknown pipeline {pipeline!r}")
    seconds = time.perf_counter() - started
    return {
        "pipeline": pipeline,
        "rows": rows,
        "written": written,
        "seconds": seconds,
        "model_load": model_load,
        "data_seconds": seconds - model_load,
        "peak_rss_mb": _peak_rss_mb(),
    }


def hook_ref(table_id: str, project: str):
    from airflow_provider_somlier.refs import parse_table_ref

    return parse_table_ref(table_id, project)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pipelines", nargs="+", default=["operator", "operator_noprofile", "naive", "raw_read"])
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="fresh-process runs of operator and raw_read per size; the median is reported (naive runs once)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.worker_rows, args.project)))
        return 0

    from airflow_provider_somlier.devtools.airflow_local import local_connections
    from airflow_provider_somlier.devtools.emulator import running_emulator
    from airflow_provider_somlier.devtools.sample_data import load_features
    from airflow_provider_somlier.devtools.sample_model import train_and_register

    workdir = Path(tempfile.mkdtemp(prefix="somlier-bench-"))
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    model = train_and_register(tracking, "bench-ridge", artifact_root=(workdir / "artifacts").as_uri())
    from mlflow import MlflowClient

    model_path = MlflowClient(tracking_uri=tracking).download_artifacts(model.run_id, "model", str(workdir))
    results = []
    with running_emulator(workdir / "bqemulator.log") as emulator:
        env = os.environ | {
            "AIRFLOW_HOME": str(workdir / "airflow"),
            **local_connections(emulator, tracking),
            "BENCH_MODEL_PATH": model_path,
        }
        os.environ.update(env)
        from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

        client = SomlierBigQueryHook().client()
        client.create_dataset(f"{emulator.project}.bench", exists_ok=True)
        for rows in args.rows:
            t0 = time.perf_counter()
            load_features(client, f"{emulator.project}.bench.features_{rows}", [DAY], rows)
            print(f"loaded {rows} rows in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            runs_of: dict[str, list] = {pipeline: [] for pipeline in args.pipelines}
            for repeat in range(max(args.repeat, 1)):
                for pipeline in args.pipelines:
                    if pipeline == "naive" and repeat:
                        continue
                    out = subprocess.run(
                        [sys.executable, __file__, "--worker", pipeline, "--worker-rows", str(rows),
                         "--project", emulator.project],
                        env=env, capture_output=True, text=True,
                    )
                    if out.returncode:
                        print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                        raise SystemExit(f"{pipeline} at {rows} rows failed")
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"  {pipeline:<9} {rows:>9} rows  {result['seconds']:7.2f}s  {result['peak_rss_mb']:6.0f} MB", file=sys.stderr)
                    runs_of[pipeline].append(result)
            for runs in runs_of.values():
                results.append(sorted(runs, key=lambda r: r["data_seconds"])[len(runs) // 2])  # the median run

    print(
        "\n| pipeline | rows | task s | registry + model load s | data path s | rows/s (data path) | peak RSS (MB) |"
        "\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for r in results:
        print(
            f"| {r['pipeline']} | {r['rows']:,} | {r['seconds']:.2f} | {r['model_load']:.2f} | {r['data_seconds']:.2f} "
            f"| {r['rows'] / r['data_seconds']:,.0f} | {r['peak_rss_mb']:.0f} |"
        )
    by = {(r["pipeline"], r["rows"]): r for r in results}
    for rows in args.rows:
        op, naive, raw = by.get(("operator", rows)), by.get(("naive", rows)), by.get(("raw_read", rows))
        if op and naive:
            print(f"\nat {rows:,} rows: operator data path is {naive['data_seconds'] / op['data_seconds']:.1f}x the naive body", end="")
        if op and raw:
            print(f"\nat {rows:,} rows: operator data path is {raw['data_seconds'] / op['data_seconds']:.2f}x the raw read", end="")
        bare = by.get(("operator_noprofile", rows))
        if op and bare:
            print(f"\nat {rows:,} rows: profiling and the gate cost "
                  f"{100 * (op['data_seconds'] / bare['data_seconds'] - 1):+.1f}% on the data path, "
                  f"{op['peak_rss_mb'] - bare['peak_rss_mb']:+.0f} MB peak RSS", end="")
    if len(args.rows) > 1 and all(("operator", n) in by for n in args.rows):
        lo, hi = by[("operator", min(args.rows))], by[("operator", max(args.rows))]
        print(f"\noperator peak RSS {max(args.rows):,} / {min(args.rows):,} rows: {hi['peak_rss_mb'] / lo['peak_rss_mb']:.2f}x")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
