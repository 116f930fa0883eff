"""``somlier deploy``: Kubernetes manifests that serve one registry version with the online server.

The manifests are plain dicts, checked offline against the Kubernetes client's models
before anything is applied; ``--dry_run`` prints them as YAML instead of applying.
"""

from __future__ import annotations

import json
import re
from typing import Any

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.refs import parse_model_ref

_K8S_NAME = re.compile(r"[^a-z0-9-]+")


def k8s_name(*parts: str) -> str:
    name = _K8S_NAME.sub("-", "-".join(parts).lower()).strip("-")[:63].rstrip("-")
    if not name:
        raise InvalidArgumentError(f"cannot make a Kubernetes name from {parts!r}")
    return name


def manifests(
    project: str,
    model_name: str,
    model_version: str,
    *,
    image: str,
    namespace: str = "default",
    use_k8s_job: bool = False,
    istio_enabled: bool = False,
    mlflow_uri: str = "",
) -> list[dict[str, Any]]:
    """Deployment + Service (or a Job), and an Istio VirtualService when asked."""
    ref = parse_model_ref(f"{model_name}/{model_version}")
    name = k8s_name(project, ref.name, f"v{ref.version}")
    labels = {"app": name, "somlier/model": k8s_name(ref.name), "somlier/version": str(ref.version)}
    env = [
        {"name": "MODEL_NAME", "value": ref.name},
        {"name": "MODEL_TYPE", "value": "mlflow"},
        {"name": "MODEL_REF", "value": str(ref)},
        {"name": "WORK_DIR", "value": "/var/lib/somlier"},
        {"name": "AIRFLOW_CONN_MLFLOW_DEFAULT", "value": json.dumps({"conn_type": "mlflow", "host": mlflow_uri})},
    ]
    container = {
        "name": "server",
        "image": image,
        "env": env,
        "ports": [{"containerPort": 8000}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8000}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8000}, "periodSeconds": 20},
        "volumeMounts": [{"name": "work", "mountPath": "/var/lib/somlier"}],
    }
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [container], "volumes": [{"name": "work", "emptyDir": {}}]}}
    meta = {"name": name, "namespace": namespace, "labels": labels}
    if use_k8s_job:
        pod["spec"]["restartPolicy"] = "Never"
        return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": pod, "backoffLimit": 2}}]
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": pod}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"selector": {"app": name}, "ports": [{"port": 8000, "targetPort": 8000}]}},
    ]
    if istio_enabled:
        objects.append({
            "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": meta,
            "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name, "port": {"number": 8000}}}]}]},
        })
    return objects


_MODELS = {"Deployment": "V1Deployment", "Service": "V1Service", "Job": "V1Job"}


def validate(objects: list[dict[str, Any]]) -> None:
    """Deserialize each built-in object into the Kubernetes client's model (no cluster needed)."""
    from kubernetes.client import ApiClient

    class _Payload:
        def __init__(self, obj):
            self.data = json.dumps(obj)

    client = ApiClient()
    for obj in objects:
        model = _MODELS.get(obj["kind"])
        if model is None:
            continue  # custom resources (Istio) have no client model
        try:
            client.deserialize(_Payload(obj), model)
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(f"{obj['kind']} {obj['metadata']['name']} is invalid: {exc}") from None


def apply(objects: list[dict[str, Any]]) -> list[str]:
    """Create the objects in the cluster of the current kube config."""
    from kubernetes import client, config, utils

    config.load_config()
    api = client.ApiClient()
    created = []
    for obj in objects:
        if obj["kind"] == "VirtualService":
            group, version = obj["apiVersion"].split("/")
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                group, version, obj["metadata"]["namespace"], "virtualservices", obj
            )
        else:
            utils.create_from_dict(api, obj)
        created.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return created
