"""Lint a rendered DAG file by loading it with the real Airflow, in a separate process.

A regex cannot tell whether a file imports, whether Airflow accepts its schedule, or
whether a pod spec can be built; ``DagBag`` and the operator itself can. The file is
loaded in a child process so a broken file cannot affect the CLI, and so the check
sees exactly what the DAG processor will see.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_somlier.errors import SomlierInputError

_CHECK = r"""
import json, os, sys, warnings
warnings.simplefilter("ignore")
path, dag_id, task_id, build_pod = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
named = [name for name in sys.argv[5].split(",") if name]
if named:  # executors the DAG names are the deployment's to run, not this machine's
    from airflow.configuration import conf
    configured = [n.strip() for n in conf.get("core", "executor").split(",") if n.strip()]
    os.environ["AIRFLOW__CORE__EXECUTOR"] = ",".join(configured + [n for n in named if n not in configured])
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=path, safe_mode=False)
report = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dag_ids)}
dag = bag.dags.get(dag_id)
if dag is not None:
    report["task_ids"] = sorted(dag.task_ids)
    report["task_types"] = sorted(t.task_type for t in dag.tasks)  # a mapped task reports its operator
    report["schedule"] = str(getattr(dag.timetable, "summary", dag.timetable))
    if build_pod and task_id in dag.task_dict:
        try:
            pod = dag.task_dict[task_id].build_pod_request_obj(dry_run=True)
            container = pod.spec.containers[0]
            report["pod"] = {"image": container.image, "command": container.command, "args": container.args,
                             "namespace": pod.metadata.namespace}
        except Exception as exc:
            report["pod_error"] = f"{type(exc).__name__}: {exc}"
print("SOMLIER-LINT " + json.dumps(report))
"""


class DagLintError(SomlierInputError):
    """The rendered file does not load as the expected DAG."""


@dataclass(frozen=True)
class LintReport:
    dag_ids: list[str]
    task_ids: list[str]
    task_types: list[str]
    schedule: str
    pod: dict | None = None


# The tasks of a sharded offline DAG (its task group "predict"), by id.
SHARDED_TASKS = {
    "predict.commit": "MLOpsShardCommitOperator",
    "predict.plan": "MLOpsShardPlanOperator",
    "predict.score": "MLOpsShardScoreOperator",
}


def lint_dag_source(
    source: str, dag_id: str, task_id: str, expected_type: str, *, build_pod: bool = False,
    tasks: dict[str, str] | None = None, executors: tuple[str, ...] = (),
) -> LintReport:
    """Load ``source`` through ``DagBag`` in a child process and check what it defines.

    The DAG must hold exactly one ``expected_type`` task ``task_id``, or, when ``tasks``
    (task id → type) is given, exactly those tasks. ``executors`` (those its tasks name, e.g.
    ``KubernetesExecutor``) are added to the child's ``[core] executor``: the machine that
    generates the file is not the deployment, whose DAG processor checks them (``--check_airflow``).
    """
    with tempfile.TemporaryDirectory(prefix="somlier-lint-") as folder:
        path = Path(folder) / f"{dag_id}.py"
        path.write_text(source)
        done = subprocess.run(
            [sys.executable, "-c", _CHECK, str(path), dag_id, task_id, "1" if build_pod else "0", ",".join(executors)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("SOMLIER-LINT ")]
    if done.returncode != 0 or not lines:
        raise DagLintError(f"loading the rendered DAG failed:\n{done.stderr[-3000:]}")
    report = json.loads(lines[-1].removeprefix("SOMLIER-LINT "))
    if report["import_errors"]:
        raise DagLintError("the rendered DAG has import errors:\n" + "\n".join(report["import_errors"].values()))
    if report["dag_ids"] != [dag_id]:
        raise DagLintError(f"expected exactly one DAG {dag_id!r}, the file defines {report['dag_ids']}")
    expected = tasks or {task_id: expected_type}
    if report["task_ids"] != sorted(expected) or report["task_types"] != sorted(expected.values()):
        wanted = f"the tasks {expected}" if tasks else f"one {expected_type} task {task_id!r}"
        raise DagLintError(f"expected {wanted}, found {report['task_types']} {report['task_ids']}")
    if "pod_error" in report:
        raise DagLintError(f"the pod spec cannot be built: {report['pod_error']}")
    return LintReport(
        dag_ids=report["dag_ids"],
        task_ids=report["task_ids"],
        task_types=report["task_types"],
        schedule=report["schedule"],
        pod=report.get("pod"),
    )
