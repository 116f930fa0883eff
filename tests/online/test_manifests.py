"""The Kubernetes manifests parse into the Kubernetes client's models, without a cluster."""

from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from online_server.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "online_server" / "k8s"


class _Response:
    def __init__(self, data):
        import json

        self.data = json.dumps(data)


def _load(kind_model, document):
    return ApiClient().deserialize(_Response(document), kind_model)


def test_pod_info_is_a_valid_deployment_and_service():
    documents = list(yaml.safe_load_all((K8S / "pod-info.yaml").read_text()))
    deployment = _load("V1Deployment", documents[0])
    service = _load("V1Service", documents[1])
    assert isinstance(deployment, client.V1Deployment) and isinstance(service, client.V1Service)
    container = deployment.spec.template.spec.containers[0]
    env = {e.name: e.value for e in container.env if e.value is not None}
    # every env name the manifest sets is a setting the server reads
    assert {name.lower() for name in env} <= set(Settings.__dataclass_fields__) | {"workers"}
    assert container.readiness_probe.http_get.path == "/readyz"
    assert deployment.spec.selector.match_labels == service.spec.selector
