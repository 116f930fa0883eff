"""Offline inference throughput and peak memory, side by side, on the local emulator.

Pipelines, each run in a fresh process (so peak RSS is its own) over one target day:

* ``operator`` -- MLOpsOfflineOperator.execute: Storage Read → predict per chunk →
  Parquet → load → one transaction replacing the day, lineage and schema checks included,
  with the day's profile and quality gate (the default);
* ``operator_noprofile`` -- the same with ``quality_profile=False``: what profiling costs;
* ``naive``    -- what a hand-written DAG body does: query → ``to_dataframe()`` →
  predict → ``insert_rows_json``;
* ``lean``     -- the yardstick: a hand-written pipeline doing the same work with the same
  clients and nothing else: Storage Read → ``predict`` per page → Parquet → load into a
  staging table → one transaction (delete the day, insert the staged rows) → drop staging;
* ``raw_read`` -- a Storage Read of the same columns and nothing else (the ceiling).

Each worker process imports ``airflow.sdk`` first (a task process has), then starts the
clock: *whole s* is everything after that — imports, registry, model, data path — which is
what a task costs on top of Airflow's own start; *data path* is read → predict → stage →
load → transaction (set-up apart). The operator's median run also prints its phases.

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
import shutil
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


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) used so far by this process and by the emulator serving it."""
    import psutil

    own = resource.getrusage(resource.RUSAGE_SELF)
    emulator = psutil.Process(int(os.environ["BENCH_EMULATOR_PID"])).cpu_times()
    return own.ru_utime + own.ru_stime, emulator.user + emulator.system


def worker(pipeline: str, rows: int, project: str) -> dict:
    import airflow.sdk  # noqa: F401 - paid by every task process before the task starts

    whole_started = time.perf_counter()
    from airflow_provider_somlier.devtools.sample_model import FEATURES
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

    source = f"{project}.bench.features_{rows}"
    destination = f"{project}.bench.out_{pipeline}_{rows}"
    hook = SomlierBigQueryHook()
    client = hook.client()
    client.delete_table(destination, not_found_ok=True)
    # The profile table stays, as it does between a destination's daily runs (created once).
    set_up = time.perf_counter() - whole_started  # the benchmark's own table reset, left out below
    if pipeline != "raw_read":
        # The data path leaves the imports out: pay them before its clock starts (the whole
        # process's clock includes them).
        import mlflow.pyfunc  # noqa: F401
        import mlflow.sklearn  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        import airflow_provider_somlier.hooks.mlflow  # noqa: F401
        import airflow_provider_somlier.offline_run  # noqa: F401
        import airflow_provider_somlier.operators  # noqa: F401
        import airflow_provider_somlier.scoring  # noqa: F401

    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    model_load = 0.0
    phases: dict = {}
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
        phases = summary["phases"]
    elif pipeline == "lean":
        written, model_load = lean_pipeline(hook, source, destination, project)
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
    ended = time.perf_counter()
    cpu_ended = _cpu_seconds()
    seconds = ended - started
    return {
        "pipeline": pipeline,
        "rows": rows,
        "written": written,
        "seconds": seconds,
        "whole_seconds": ended - whole_started - set_up,
        "model_load": model_load,
        "data_seconds": seconds - model_load,
        "phases": phases,
        "peak_rss_mb": _peak_rss_mb(),
        # Loading the model is one busy thread: what the data path cost this process is the rest.
        "client_cpu": cpu_ended[0] - cpu_started[0] - model_load,
        "emulator_cpu": cpu_ended[1] - cpu_started[1],
    }


def lean_pipeline(hook, source: str, destination: str, project: str) -> tuple[int, float]:
    """The yardstick: the same work, hand-written, with nothing but the clients. Returns (rows, model seconds)."""
    import uuid

    import mlflow.pyfunc
    import pyarrow as pa
    import pyarrow.parquet as pq
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import types

    from airflow_provider_somlier.devtools.sample_model import FEATURES

    loading = time.perf_counter()
    tracking = json.loads(os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"])["host"]
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    model = mlflow.pyfunc.load_model("models:/bench-ridge/1", suppress_warnings=True)
    model_seconds = time.perf_counter() - loading

    client, read_client = hook.client(), hook.read_client()
    project_id, dataset, table = source.split(".")
    session = read_client.create_read_session(
        parent=f"projects/{project_id}",
        read_session=types.ReadSession(
            table=f"projects/{project_id}/datasets/{dataset}/tables/{table}",
            data_format=types.DataFormat.ARROW,
            read_options=types.ReadSession.TableReadOptions(
                selected_fields=["row_id", *FEATURES], row_restriction=f"load_date = DATE '{DAY}'"
            ),
        ),
        max_stream_count=1,
    )
    schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
    out_schema = pa.schema([("row_id", pa.int64()), ("prediction", pa.float64())])
    path = os.path.join(tempfile.mkdtemp(prefix="somlier-bench-lean-"), "staged.parquet")
    written = 0
    with pq.ParquetWriter(path, out_schema, use_dictionary=False, write_statistics=False) as writer:
        for response in read_client.read_rows(session.streams[0].name):
            batch = pa.ipc.read_record_batch(pa.py_buffer(response.arrow_record_batch.serialized_record_batch), schema)
            frame = batch.select(list(FEATURES)).to_pandas()
            predictions = pa.array(model.predict(frame), pa.float64())
            writer.write_table(pa.table({"row_id": batch.column("row_id"), "prediction": predictions}, out_schema))
            written += batch.num_rows
    staging = f"{project_id}.{dataset}._lean_staging_{uuid.uuid4().hex[:8]}"
    fields = [bigquery.SchemaField("row_id", "INT64"), bigquery.SchemaField("prediction", "FLOAT64")]
    client.create_table(bigquery.Table(staging, schema=fields))
    with open(path, "rb") as staged:
        client.load_table_from_file(
            staged, staging,
            job_config=bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET, schema=fields),
        ).result()
    shutil.rmtree(os.path.dirname(path))
    client.create_table(
        bigquery.Table(destination, schema=[*fields, bigquery.SchemaField("target_date", "DATE")]), exists_ok=True
    )
    client.query(
        "BEGIN TRANSACTION;\n"
        f"DELETE FROM `{destination}` WHERE target_date = DATE '{DAY}';\n"
        f"INSERT INTO `{destination}` (row_id, prediction, target_date) "
        f"SELECT row_id, prediction, DATE '{DAY}' FROM `{staging}`;\n"
        "COMMIT TRANSACTION;"
    ).result()
    client.delete_table(staging)
    return written, model_seconds


def hook_ref(table_id: str, project: str):
    from airflow_provider_somlier.refs import parse_table_ref

    return parse_table_ref(table_id, project)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--pipelines", nargs="+", default=["operator", "operator_noprofile", "lean", "naive", "raw_read"]
    )
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
            "BENCH_EMULATOR_PID": str(emulator.pid),
            "AIRFLOW__SOMLIER__MODEL_CACHE_DIR": str(workdir / "model-cache"),
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
                        raise SystemExit(f"{pipeline} at {rows} rows failed (its emulator log: {workdir})")
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"  {pipeline:<9} {rows:>9} rows  {result['seconds']:7.2f}s  {result['peak_rss_mb']:6.0f} MB", file=sys.stderr)
                    runs_of[pipeline].append(result)
            for runs in runs_of.values():
                results.append(sorted(runs, key=lambda r: r["data_seconds"])[len(runs) // 2])  # the median run
    shutil.rmtree(workdir, ignore_errors=True)  # kept when a run failed: its logs are there

    print(
        "\n| pipeline | rows | whole s | task s | registry + model load s | data path s | rows/s (data path) "
        "| CPU s on the data path (this process + emulator) | peak RSS (MB) |"
        "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for r in results:
        print(
            f"| {r['pipeline']} | {r['rows']:,} | {r['whole_seconds']:.2f} | {r['seconds']:.2f} | {r['model_load']:.2f} "
            f"| {r['data_seconds']:.2f} | {r['rows'] / r['data_seconds']:,.0f} "
            f"| {r['client_cpu']:.2f} + {r['emulator_cpu']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    for r in results:
        if r.get("phases"):
            print(f"\n{r['pipeline']} at {r['rows']:,} rows, phases (s): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items()), end="")
    print()
    by = {(r["pipeline"], r["rows"]): r for r in results}
    for rows in args.rows:
        op, naive, raw = by.get(("operator", rows)), by.get(("naive", rows)), by.get(("raw_read", rows))
        if op and naive:
            print(f"\nat {rows:,} rows: operator data path is {naive['data_seconds'] / op['data_seconds']:.1f}x the naive body", end="")
        if op and raw:
            print(f"\nat {rows:,} rows: operator data path is {raw['data_seconds'] / op['data_seconds']:.2f}x the raw read", end="")
        lean = by.get(("lean", rows))
        if op and lean:
            print(f"\nat {rows:,} rows: whole process, operator / lean = {op['whole_seconds'] / lean['whole_seconds']:.2f}x; "
                  f"data path, operator / lean = {op['data_seconds'] / lean['data_seconds']:.2f}x", end="")
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
