"""The Kubernetes manifests parse into the Kubernetes client's models, without a cluster."""

from pathlib import Path

import yaml

from airflow_provider_somlier.lifecycle.deploy import validate
from online_server.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "online_server" / "k8s"


def test_pod_info_is_a_valid_deployment_and_service():
    documents = list(yaml.safe_load_all((K8S / "pod-info.yaml").read_text()))
    validate(documents)
    deployment, service = documents
    assert [deployment["kind"], service["kind"]] == ["Deployment", "Service"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"] for e in container["env"] if "value" in e}
    # every env name the manifest sets is a setting the server reads
    assert {name.lower() for name in env} <= set(Settings.__dataclass_fields__) | {"workers"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_validation_catches_a_missing_required_field():
    import pytest

    from airflow_provider_somlier.errors import InvalidArgumentError

    broken = list(yaml.safe_load_all((K8S / "pod-info.yaml").read_text()))
    del broken[0]["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(InvalidArgumentError, match="Deployment somlier-online is invalid"):
        validate(broken)
