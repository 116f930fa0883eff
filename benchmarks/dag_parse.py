"""DAG parse cost per file: generated SoMLier DAGs against files holding one bare EmptyOperator.

Two ways of parsing, because they favour different things:

- ``dagbag``: one ``DagBag`` over a folder of N files in a fresh process. Every module
  a DAG file imports is imported once and shared by the N files.
- ``processor``: the way Airflow 3's DAG processor parses. The manager process has
  Airflow imported and, before each file, pre-imports the ``airflow.*`` modules that
  file imports (``_pre_import_airflow_modules``); it then forks a fresh process per
  file, which does what the processor's ``_parse_file`` does (``BundleDagBag`` of that
  one file, then serialization; the manager's ``gc.freeze()`` before forking included).
  Whatever a file imports outside ``airflow.*`` — here
  ``airflow_provider_somlier.operators`` — is imported again in every child, so its
  import cost counts per file. The time is taken inside the child, for the parse and
  for parse + serialization, and the median over files is shown. Bare and generated
  files take turns, file by file, so a shared machine's drift weighs on both alike; the
  ratio reported is the median of the file-by-file ratios.

A third table times each module a generated file imports outside ``airflow.*``, alone
in a forked child, to show where a generated file's extra cost comes from.

Times are CPU time of the parsing process (``time.process_time``), which a busy shared
machine disturbs less than wall time. Byte-compiled modules are allowed, as in a
default deployment (installed packages ship ``.pyc`` files; the DAG folder gets its
``__pycache__`` after the first parse): each way runs once untimed before the timed runs.

Usage: ``.venv/bin/python benchmarks/dag_parse.py [--files 500] [--processor-files 200]``
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BARE = '''import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id={dag_id!r}, schedule="0 9 * * *", start_date=datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc), catchup=False) as dag:
    EmptyOperator(task_id="predict")
'''

_DAGBAG = r"""
import json, sys, time, warnings
sys.dont_write_bytecode = False
warnings.simplefilter("ignore")
t0 = time.process_time()
from airflow.dag_processing.dagbag import DagBag
imported = time.process_time()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
done = time.process_time()
print(json.dumps({"dags": len(bag.dags), "errors": len(bag.import_errors), "parse": done - imported, "setup": imported - t0}))
"""

_PROCESSOR = r"""
import gc, json, os, sys, time, warnings
from pathlib import Path
sys.dont_write_bytecode = False
warnings.simplefilter("ignore")
import structlog
import airflow.dag_processing.manager  # what the manager process has imported
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import _pre_import_airflow_modules, _serialize_dags

log = structlog.get_logger()
warm, folders = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
# Load one operator-less DAG in the manager first, so DagBag's own lazily imported modules
# are not counted in every child (they are the same for every file).
BundleDagBag(dag_folder=os.fspath(warm), bundle_path=warm.parent, bundle_name="bench", load_op_links=False)
gc.freeze()  # as the manager does before its loop, against copy-on-write in the children


def parse_in_child(path):
    _pre_import_airflow_modules(os.fspath(path), log)  # in the manager, as DagFileProcessorProcess.start does
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the per-file process; the same two steps as the processor's _parse_file
        os.close(read)
        os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
        started = time.process_time()
        bag = BundleDagBag(dag_folder=os.fspath(path), bundle_path=path.parent, bundle_name="bench", load_op_links=False)
        parsed = time.process_time()
        serialized, errors = _serialize_dags(bag, log)
        done = time.process_time()
        os.write(write, json.dumps({
            "parse": parsed - started, "total": done - started, "dags": len(serialized),
            "errors": len(bag.import_errors) + len(errors),
        }).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return child


# The kinds take turns file by file (in alternating order), so a machine that slows down
# or speeds up during the run weighs on every kind alike.
report = [{"parse": [], "total": [], "dags": 0, "errors": 0} for _ in folders]
files = [sorted(folder.glob("*.py")) for folder in folders]
for i, paths in enumerate(zip(*files)):
    order = list(range(len(folders)))
    for k in order if i % 2 == 0 else reversed(order):
        child = parse_in_child(paths[k])
        for key in ("parse", "total"):
            report[k][key].append(child[key])
        report[k]["dags"] += child["dags"]
        report[k]["errors"] += child["errors"]
print(json.dumps(report))
"""


_IMPORTS = r"""
import gc, json, os, statistics, sys, time, warnings
sys.dont_write_bytecode = False
warnings.simplefilter("ignore")
import airflow.dag_processing.manager
import airflow.sdk
from airflow.sdk import DAG, BaseOperator
gc.freeze()
report = {}
for module in sys.argv[2:]:
    seconds = []
    for _ in range(int(sys.argv[1])):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            import colorsys  # the child's first import touches (copies) importlib's own pages: not counted
            started = time.process_time()
            __import__(module)
            os.write(write, json.dumps(time.process_time() - started).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            seconds.append(json.loads(pipe.read()))
        os.waitpid(pid, 0)
    report[module] = statistics.median(seconds)
print(json.dumps(report))
"""
IMPORTED_PER_FILE = ("airflow_provider_somlier.operators.offline",)


def _write_folders(root: Path, files: int) -> dict[str, Path]:
    from airflow_provider_somlier.generate.render import render_offline
    from airflow_provider_somlier.generate.spec import OfflineDagSpec

    folders = {"bare EmptyOperator": root / "bare", "generated MLOpsOfflineOperator": root / "generated"}
    for folder in folders.values():
        folder.mkdir()
    for i in range(files):
        dag_id = f"inference_model_{i:04d}"
        (folders["bare EmptyOperator"] / f"{dag_id}.py").write_text(BARE.format(dag_id=dag_id))
        spec = OfflineDagSpec.validated(
            model_ref=f"model-{i}@champion", dag_id=dag_id, schedule="0 9 * * *", dataset_ref=f"features.table_{i}",
            dataset_load_column="load_date", destination_table_ref=f"predictions.table_{i}", start_date="2026-11-01",
        )
        (folders["generated MLOpsOfflineOperator"] / f"{dag_id}.py").write_text(render_offline(spec, ["somlier"]))
    return folders


LOCAL_SETTINGS = """import airflow_provider_somlier.operators.offline  # noqa: F401 - imported once, before the fork
"""

WARM_UP = '''import datetime
from airflow.sdk import DAG

with DAG(dag_id="warm_up", schedule=None, start_date=datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)) as dag:
    pass
'''


def _run(script: str, *args: object, pythonpath: Path | None = None) -> dict:
    """Run ``script`` in a fresh interpreter that may use and write byte-compiled modules."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(pythonpath), env.get("PYTHONPATH"))))
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500, help="files per kind for the DagBag way")
    parser.add_argument("--processor-files", type=int, default=200, help="files per kind for the processor way")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    # Installed packages ship byte-compiled modules; a source checkout gets them here.
    compileall.compile_dir(str(REPO / "airflow_provider_somlier"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="somlier-parse-") as folder:
        _measure(args, Path(folder))
    return 0


def _measure(args: argparse.Namespace, root: Path) -> None:
    folders = _write_folders(root, max(args.files, args.processor_files))
    warm_up = root / "warm-up" / "warm_up.py"
    warm_up.parent.mkdir()
    warm_up.write_text(WARM_UP)

    dagbag: dict[str, float] = {}
    subsets = []
    for label, folder in folders.items():
        _run(_DAGBAG, folder)  # untimed: writes the DAG folder's __pycache__
        runs = []
        for _ in range(args.repeat):
            report = _run(_DAGBAG, folder)
            assert report["dags"] == len(list(folder.glob("*.py"))) and report["errors"] == 0, report
            runs.append(report["parse"] / report["dags"])
        dagbag[label] = min(runs)
        subset = root / f"{folder.name}-processor"
        subset.mkdir()
        for path in sorted(folder.glob("*.py"))[: args.processor_files]:
            (subset / path.name).write_bytes(path.read_bytes())
        subsets.append(subset)

    # The same, with the operator imported by the deployment's airflow_local_settings.py
    # (README, "DAG parse cost"): Airflow imports that file in every process, the DAG
    # processor's manager included, before it forks the per-file processes.
    local_settings = root / "local-settings"
    local_settings.mkdir()
    (local_settings / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
    processor, parse_ratio, total_ratio = _processor(args, folders, warm_up, subsets)
    preloaded = _processor(args, folders, warm_up, subsets, pythonpath=local_settings)

    print(
        f"\n| DAG file | DagBag, {args.files} files in one process: CPU ms per file "
        f"| processor, one fresh process per file: parse CPU ms | ... + serialization CPU ms |"
        "\n|---|---:|---:|---:|"
    )
    for label in folders:
        print(f"| {label} | {1000 * dagbag[label]:.2f} | {1000 * processor[label][0]:.2f} | {1000 * processor[label][1]:.2f} |")
    for label in folders:
        print(f"| {label}, operator imported in `airflow_local_settings.py` | | "
              f"{1000 * preloaded[0][label][0]:.2f} | {1000 * preloaded[0][label][1]:.2f} |")
    bare, generated = "bare EmptyOperator", "generated MLOpsOfflineOperator"
    imports = _run(_IMPORTS, args.processor_files, *IMPORTED_PER_FILE)
    print("\n| imported alone in a fresh process (after airflow.sdk) | CPU ms (median) |\n|---|---:|")
    for module, seconds in imports.items():
        print(f"| `{module}`{' (and what it imports)' if module.endswith('offline') else ''} | {1000 * seconds:.2f} |")
    print(
        f"\n(best of {args.repeat} runs; processor figures are the median over {args.processor_files} files)"
        f"\ngenerated / bare: DagBag {dagbag[generated] / dagbag[bare]:.2f}x; processor, median of the "
        f"file-by-file ratios (each run): parse {', '.join(f'{r:.2f}x' for r in parse_ratio)}; "
        f"parse + serialization {', '.join(f'{r:.2f}x' for r in total_ratio)}"
        f"\nwith the operator imported in airflow_local_settings.py: parse "
        f"{', '.join(f'{r:.2f}x' for r in preloaded[1])}; parse + serialization "
        f"{', '.join(f'{r:.2f}x' for r in preloaded[2])}\n"
    )


def _processor(args: argparse.Namespace, folders: dict[str, Path], warm_up: Path, subsets: list[Path],
               pythonpath: Path | None = None) -> tuple[dict[str, tuple[float, float]], list[float], list[float]]:
    """The processor way, ``args.repeat`` times: best medians per kind, and each run's generated/bare ratios."""
    _run(_PROCESSOR, warm_up, *subsets, pythonpath=pythonpath)  # untimed warm-up, as above
    processor: dict[str, tuple[float, float]] = {}
    parse_ratio, total_ratio = [], []
    for _ in range(args.repeat):
        reports = dict(zip(folders, _run(_PROCESSOR, warm_up, *subsets, pythonpath=pythonpath)))
        for label, report in reports.items():
            assert report["dags"] == args.processor_files and report["errors"] == 0, report
            median = (statistics.median(report["parse"]), statistics.median(report["total"]))
            processor[label] = min(processor.get(label, median), median)
        bare, generated = reports["bare EmptyOperator"], reports["generated MLOpsOfflineOperator"]
        parse_ratio.append(statistics.median(g / b for g, b in zip(generated["parse"], bare["parse"])))
        total_ratio.append(statistics.median(g / b for g, b in zip(generated["total"], bare["total"])))
    return processor, parse_ratio, total_ratio


if __name__ == "__main__":
    sys.exit(main())
