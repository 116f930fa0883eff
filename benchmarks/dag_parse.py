"""DagBag parse time per file: generated SoMLier DAGs against files holding one bare EmptyOperator.

Writes N files of each kind into two folders and times ``DagBag`` over each folder in
a fresh process (so module caches do not favour the second). The target is a
generated file costing at most 1.2-1.5x the bare file: heavy imports stay inside
``execute``.

Usage: ``.venv/bin/python benchmarks/dag_parse.py [--files 500]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BARE = '''import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id={dag_id!r}, schedule="0 9 * * *", start_date=datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc), catchup=False) as dag:
    EmptyOperator(task_id="predict")
'''

_TIME = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
done = time.perf_counter()
print(json.dumps({"dags": len(bag.dags), "errors": len(bag.import_errors), "parse": done - imported, "setup": imported - t0}))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from airflow_provider_somlier.generate.render import render_offline
    from airflow_provider_somlier.generate.spec import OfflineDagSpec

    root = Path(tempfile.mkdtemp(prefix="somlier-parse-"))
    folders = {"bare EmptyOperator": root / "bare", "generated MLOpsOfflineOperator": root / "generated"}
    for folder in folders.values():
        folder.mkdir()
    for i in range(args.files):
        dag_id = f"inference_model_{i:04d}"
        (folders["bare EmptyOperator"] / f"{dag_id}.py").write_text(BARE.format(dag_id=dag_id))
        spec = OfflineDagSpec.validated(
            model_ref=f"model-{i}@champion", dag_id=dag_id, schedule="0 9 * * *", dataset_ref=f"features.table_{i}",
            dataset_load_column="load_date", destination_table_ref=f"predictions.table_{i}", start_date="2026-11-01",
        )
        (folders["generated MLOpsOfflineOperator"] / f"{dag_id}.py").write_text(render_offline(spec, ["somlier"]))

    results = {}
    for label, folder in folders.items():
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", _TIME, str(folder)], capture_output=True, text=True, check=True)
            report = json.loads(out.stdout.strip().splitlines()[-1])
            assert report["dags"] == args.files and report["errors"] == 0, report
            runs.append(report["parse"])
        results[label] = min(runs)
    print(f"\n| DAG files ({args.files} each) | DagBag parse s (best of {args.repeat}) | ms per file |\n|---|---:|---:|")
    for label, seconds in results.items():
        print(f"| {label} | {seconds:.2f} | {1000 * seconds / args.files:.2f} |")
    ratio = results["generated MLOpsOfflineOperator"] / results["bare EmptyOperator"]
    print(f"\ngenerated / bare: {ratio:.2f}x\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
