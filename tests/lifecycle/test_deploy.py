"""`somlier deploy`: the version is checked in a real registry, manifests checked against the Kubernetes client's models."""

import pytest
import yaml
from click.testing import CliRunner

from airflow_provider_somlier.cli import main


@pytest.fixture
def deploy(registry, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))

    def run(*args, dry_run=True):
        result = CliRunner().invoke(
            main, ["deploy", *args, *(["--dry_run"] if dry_run else []), "--tracking_uri", registry["uri"]]
        )
        return result.exit_code, result.stdout, result.stderr

    return run


def test_a_deployment_and_service_serve_the_registry_version(deploy):
    code, out, err = deploy("diabetes", "diabetes-ridge", "2", "--cpu", "500m", "--memory", "1Gi")
    assert code == 0, err
    assert "&" not in out and "*id" not in out  # plain YAML: no anchors or aliases
    objects = list(yaml.safe_load_all(out))
    assert [o["kind"] for o in objects] == ["Deployment", "Service"]
    container = objects[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["MODEL_TYPE"]["value"] == "mlflow" and env["MODEL_REF"]["value"] == "diabetes-ridge/2"
    assert env["AIRFLOW_CONN_MLFLOW_DEFAULT"] == {"name": "AIRFLOW_CONN_MLFLOW_DEFAULT", "valueFrom": {
        "secretKeyRef": {"name": "somlier-mlflow", "key": "AIRFLOW_CONN_MLFLOW_DEFAULT"}}}
    assert "sqlite" not in out
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                      "limits": {"cpu": "500m", "memory": "1Gi"}}
    assert objects[1]["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert objects[0]["metadata"]["name"] == "diabetes-diabetes-ridge-v2"


@pytest.mark.parametrize("given", ["champion", "@champion"])
def test_an_alias_deploys_the_version_it_names_now(deploy, given):
    """The alias is resolved once: moving it later does not change what the pods serve."""
    code, out, err = deploy("diabetes", "diabetes-ridge", given)
    assert code == 0, err
    assert "diabetes-ridge@champion is version 1: deploying it" in err
    env = {e["name"]: e.get("value") for e in next(yaml.safe_load_all(out))["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_REF"] == "diabetes-ridge/1"


@pytest.mark.parametrize("flags, kinds", [
    (("--use_k8s_job", "True"), ["Job"]),
    (("--istio_enabled", "True"), ["Deployment", "Service", "VirtualService"]),
])
def test_job_and_istio_variants(deploy, flags, kinds):
    code, out, _ = deploy("diabetes", "diabetes-ridge", "1", *flags)
    assert code == 0 and [o["kind"] for o in yaml.safe_load_all(out)] == kinds


@pytest.mark.parametrize("args, message", [
    (("p", "diabetes-ridge", "1bad"), "'1bad'"),
    (("p", "diabetes-ridge", "99"), "has no version 99"),
    (("p", "diabetes-ridge", "nope"), "MODEL_VERSION 'nope' is neither a version number nor an alias of 'diabetes-ridge'"),
    (("p", "m", "1", "--use_k8s_job", "sometimes"), "--use_k8s_job must be true or false"),
    (("p", "diabetes-ridge", "1", "--use_k8s_job", "true", "--istio_enabled", "true"), "contradict each other"),
    (("p", "diabetes-ridge", "1", "--memory", "lots"), "--memory 'lots' is not a Kubernetes quantity"),
    (("p", "diabetes-ridge", "1", "--namespace", "Prod_NS"), "--namespace 'Prod_NS' is not a Kubernetes namespace"),
])
def test_bad_deploy_inputs_exit_2(deploy, args, message):
    code, _, err = deploy(*args)
    assert code == 2 and message in err, err


def test_without_a_kube_config_deploy_says_so(deploy):
    code, _, err = deploy("p", "diabetes-ridge", "1", dry_run=False)
    assert code == 2 and "no Kubernetes cluster configured" in err and "Traceback" not in err
