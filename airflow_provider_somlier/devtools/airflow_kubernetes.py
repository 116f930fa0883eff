"""The KubernetesExecutor in the production-shaped stack, its cluster the local Kubernetes API stand-in.

Airflow 3 runs several executors in one deployment: with ``[core] executor =
CeleryExecutor,KubernetesExecutor`` a task goes to the Celery workers unless it names the
other (``executor="KubernetesExecutor"``, per task or in a DAG's ``default_args``). The
scheduler's KubernetesExecutor then does what it does on a cluster — builds each task's pod
from the pod template and the task's ``pod_override``, creates it, follows it through a
watch, deletes it when the task succeeded — against :class:`KubernetesApi`, whose node runs
each pod as a local process with the image's environment: the stack's own settings, as the
deployment's image and Helm values would give it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from airflow_provider_somlier.devtools.kubernetes_api import KubernetesApi
from airflow_provider_somlier.devtools.pidfiles import PidFiles

NAMESPACE = "somlier"
EXECUTORS = "CeleryExecutor,KubernetesExecutor"
IMAGE = "somlier-local:dev"
# The Helm chart's worker pod template, reduced to what the executor fills in: the container
# named ``base`` (the executor sets its image and its args, the task's command), never restarted.
POD_TEMPLATE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "placeholder-name", "labels": {"tier": "airflow", "component": "worker"}},
    "spec": {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 10,
        "containers": [{"name": "base", "image": IMAGE, "imagePullPolicy": "IfNotPresent"}],
    },
}


def executor_settings(api: KubernetesApi, folder: Path) -> dict[str, str]:
    """The ``[kubernetes_executor]`` settings that point the executor at ``api``: kubeconfig, namespace, template."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "pod_template.yaml"
    template.write_text(json.dumps(POD_TEMPLATE, indent=2))  # JSON is YAML
    repository, tag = IMAGE.split(":")
    return {
        "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(api.write_kubeconfig(folder / "kubeconfig", NAMESPACE)),
        "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
        "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": NAMESPACE,
        "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(template),
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": repository,
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": tag,
        "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS": "True",
        "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE": "False",
    }


def image_environment(stack_env: dict[str, str]) -> dict[str, str]:
    """What the deployment's image gives every task pod: the stack's settings, this interpreter's ``python`` first."""
    path = stack_env.get("PATH", os.environ.get("PATH", ""))
    return {**stack_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{path}"}


@contextlib.contextmanager
def running_kubernetes_api(folder: Path, pids: PidFiles | None = None) -> Iterator[KubernetesApi]:
    """The stand-in, serving until the block ends; every pod still running then is ended with it.

    Its pods' environment is set by the caller (``api.environment = image_environment(env)``)
    once the stack's settings are known, before the scheduler can create a pod.
    """
    api = KubernetesApi(folder=folder, environment={}, pids=pids).start()
    try:
        yield api
    finally:
        api.stop()
