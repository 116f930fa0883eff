"""``somlier deploy``: Kubernetes manifests that serve one registry version with the online server.

The manifests are plain dicts, checked offline against the Kubernetes client's models
before anything is applied; ``--dry_run`` prints them as YAML instead of applying. The
version is checked in the registry first, in a dry run too.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from airflow_provider_somlier.errors import (
    InvalidArgumentError,
    ModelNotFoundError,
    RegistryUnavailableError,
    SomlierError,
)
from airflow_provider_somlier.refs import parse_model_ref

_K8S_NAME = re.compile(r"[^a-z0-9-]+")
NAME_LIMIT = 63  # a DNS-1123 label: Service names and label values are at most 63 characters
HASH_LENGTH = 8


def k8s_name(*parts: str, letter_first: bool = True) -> str:
    """A DNS-1035 label from ``parts`` (``m-`` before one that would start with a digit); one that would be
    too long is cut and ends with a hash of them all. ``letter_first=False`` gives a label value, which
    may start with a digit, so a model named ``2026-churn`` is found by ``somlier/model=2026-churn``.

    Cutting alone would give two long names that differ only at their end (``…-v1``, ``…-v2``)
    the same object, so deploying version 2 would update version 1's Deployment and Service.
    The hash is of the parts as given, so the same parts always give the same name.
    """
    name = _K8S_NAME.sub("-", "-".join(parts).lower()).strip("-")
    if not name:
        raise InvalidArgumentError(f"cannot make a Kubernetes name from {parts!r}")
    if letter_first and name[0].isdigit():  # a Service's name is a DNS-1035 label: it starts with a letter
        name = f"m-{name}"
    if len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]
    return f"{name[:NAME_LIMIT - HASH_LENGTH - 1].rstrip('-')}-{digest}"


_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DEFAULT_SECRET = "somlier-mlflow"
APPLY_TIMEOUT_SECONDS = 30
PORT = 8000


def _quantity(flag: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _QUANTITY.match(value):
        raise InvalidArgumentError(f"{flag} {value!r} is not a Kubernetes quantity such as 500m, 1, 512Mi or 2Gi")
    return value


def _secret_name(secret: str) -> str:
    """The Secret is referred to as named: a name changed to fit would point at another Secret."""
    if len(secret) > 253 or not _DNS_SUBDOMAIN.match(secret):
        raise InvalidArgumentError(
            f"--mlflow_secret {secret!r} is not a Kubernetes Secret name (lowercase letters, digits, '-' and '.', "
            "at most 253 characters)"
        )
    return secret


def manifests(
    project: str,
    model_name: str,
    model_version: str,
    *,
    image: str,
    namespace: str = "default",
    use_k8s_job: bool = False,
    istio_enabled: bool = False,
    mlflow_secret: str = DEFAULT_SECRET,
    cpu: str | None = None,
    memory: str | None = None,
) -> list[dict[str, Any]]:
    """Deployment + Service (or a Job), and an Istio VirtualService when asked.

    The registry's address and credentials reach the pod only as a reference to the Secret
    ``mlflow_secret`` (key ``AIRFLOW_CONN_MLFLOW_DEFAULT``, an ``mlflow`` connection in JSON),
    never as plain text in the manifest.
    """
    if use_k8s_job and istio_enabled:
        raise InvalidArgumentError(
            "--use_k8s_job and --istio_enabled contradict each other: a Job has no Service for a "
            "VirtualService to route to; choose one"
        )
    if not _DNS_LABEL.match(namespace):
        raise InvalidArgumentError(f"--namespace {namespace!r} is not a Kubernetes namespace name (lowercase, digits, '-')")
    if not image.strip() or any(c.isspace() for c in image):
        raise InvalidArgumentError(f"--image {image!r} is not an image reference")
    ref = parse_model_ref(f"{model_name}/{model_version}")
    name = k8s_name(project, ref.name, f"v{ref.version}")
    secret = _secret_name(mlflow_secret)
    cpu, memory = _quantity("--cpu", cpu), _quantity("--memory", memory)
    resources = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value}

    def labels() -> dict[str, str]:
        return {"app": name, "somlier/model": k8s_name(ref.name, letter_first=False), "somlier/version": str(ref.version)}

    def meta() -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": labels()}

    env = [
        {"name": "MODEL_NAME", "value": ref.name},
        {"name": "MODEL_TYPE", "value": "mlflow"},
        {"name": "MODEL_REF", "value": str(ref)},
        {"name": "WORK_DIR", "value": "/var/lib/somlier"},
        {"name": "AIRFLOW_CONN_MLFLOW_DEFAULT",
         "valueFrom": {"secretKeyRef": {"name": secret, "key": "AIRFLOW_CONN_MLFLOW_DEFAULT"}}},
    ]
    container = {
        "name": "server",
        "image": image,
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 20},
        "volumeMounts": [{"name": "work", "mountPath": "/var/lib/somlier"}],
    }
    if resources:
        container["resources"] = {"requests": dict(resources), "limits": dict(resources)}
    pod = {"metadata": {"labels": labels()},
           "spec": {"containers": [container], "volumes": [{"name": "work", "emptyDir": {}}]}}
    if use_k8s_job:
        pod["spec"]["restartPolicy"] = "Never"
        return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(), "spec": {"template": pod, "backoffLimit": 2}}]
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": pod}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(),
         "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]}},
    ]
    if istio_enabled:
        objects.append({
            "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": meta(),
            "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name, "port": {"number": PORT}}}]}]},
        })
    return objects


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Plain YAML documents: no anchors or aliases, keys in the order written."""
    import yaml

    class _Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump_all(objects, Dumper=_Plain, sort_keys=False)


def resolve_version(client: Any, model_name: str, model_version: str) -> str:
    """MODEL_VERSION as a version number: a number as it is; an alias (``champion`` or ``@champion``)
    resolved to the version it names now, so what is deployed stays put when the alias moves."""
    from mlflow.exceptions import MlflowException

    text = str(model_version).strip()
    if text.isascii() and text.isdigit():
        return text
    alias = text.removeprefix("@")
    ref = parse_model_ref(f"{model_name}@{alias}")  # refuses what is neither a number nor an alias, by name
    try:
        return str(client.get_model_version_by_alias(ref.name, ref.alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ModelNotFoundError(
                f"MODEL_VERSION {model_version!r} is neither a version number nor an alias of {ref.name!r} in the "
                f"registry at {client._registry_uri}: expected e.g. 3 or champion"
            ) from None
        raise RegistryUnavailableError(f"the registry at {client._registry_uri} failed: {exc.message}") from None


def check_version(client: Any, model_name: str, model_version: str) -> None:
    """Refuse to deploy a version the registry does not hold."""
    from mlflow.exceptions import MlflowException

    ref = parse_model_ref(f"{model_name}/{model_version}")
    try:
        client.get_model_version(ref.name, ref.version)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelNotFoundError(
                f"model {ref.name!r} has no version {ref.version} in the registry at {client._registry_uri}"
            ) from None
        raise RegistryUnavailableError(f"the registry at {client._registry_uri} failed: {exc.message}") from None


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
    """Create or update the objects in the cluster of the current kube config (server-side apply).

    Applying the same manifests twice changes nothing the second time; a changed image or
    resource request updates the objects in place.
    """
    from kubernetes import client, config, dynamic
    from kubernetes.config.config_exception import ConfigException

    try:
        config.load_config()
    except ConfigException as exc:
        raise InvalidArgumentError(
            f"no Kubernetes cluster configured ({exc}): set KUBECONFIG or run in a pod, or use --dry_run"
        ) from None
    try:
        api = dynamic.DynamicClient(client.ApiClient())  # reads the cluster's API discovery
    except Exception as exc:  # noqa: BLE001 - urllib3 and API errors alike: the cluster did not answer
        raise SomlierError(f"the Kubernetes API did not answer: {type(exc).__name__}: {exc}") from None
    applied = []
    for obj in objects:
        resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        api.server_side_apply(
            resource, body=obj, name=obj["metadata"]["name"], namespace=obj["metadata"]["namespace"],
            field_manager="somlier", force_conflicts=True, _request_timeout=APPLY_TIMEOUT_SECONDS,
        )
        applied.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return applied
