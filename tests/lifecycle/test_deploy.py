"""`somlier deploy --dry_run`: manifests checked against the Kubernetes client's models."""

import pytest
import yaml
from click.testing import CliRunner

from airflow_provider_somlier.cli import main


def deploy(*args):
    result = CliRunner().invoke(main, ["deploy", *args, "--dry_run", "--tracking_uri", "http://mlflow:5000"])
    return result.exit_code, result.stdout, result.stderr


def test_a_deployment_and_service_serve_the_registry_version():
    code, out, err = deploy("diabetes", "diabetes-ridge", "3")
    assert code == 0, err
    objects = list(yaml.safe_load_all(out))
    assert [o["kind"] for o in objects] == ["Deployment", "Service"]
    env = {e["name"]: e["value"] for e in objects[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_TYPE"] == "mlflow" and env["MODEL_REF"] == "diabetes-ridge/3"
    assert objects[0]["metadata"]["name"] == "diabetes-diabetes-ridge-v3"


@pytest.mark.parametrize("flags, kinds", [
    (("--use_k8s_job", "True"), ["Job"]),
    (("--istio_enabled", "True"), ["Deployment", "Service", "VirtualService"]),
])
def test_job_and_istio_variants(flags, kinds):
    code, out, _ = deploy("diabetes", "diabetes-ridge", "3", *flags)
    assert code == 0 and [o["kind"] for o in yaml.safe_load_all(out)] == kinds


@pytest.mark.parametrize("args, message", [
    (("p", "diabetes-ridge", "latest"), "'latest'"),
    (("p", "m", "1", "--use_k8s_job", "sometimes"), "--use_k8s_job must be true or false"),
])
def test_bad_deploy_inputs_exit_2(args, message):
    code, _, err = deploy(*args)
    assert code == 2 and message in err
