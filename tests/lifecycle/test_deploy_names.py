"""`somlier deploy` names: long project and model names still give one object per version, never a shared one."""

import re

import pytest
import yaml
from click.testing import CliRunner

from airflow_provider_somlier.cli import main

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # DNS-1035, as a Service's name must be


@pytest.fixture
def names(registry):
    def run(project: str, version: str, *flags: str) -> set[str]:
        result = CliRunner().invoke(
            main, ["deploy", project, "diabetes-ridge", version, *flags, "--dry_run", "--tracking_uri", registry["uri"]]
        )
        assert result.exit_code == 0, result.stderr
        objects = list(yaml.safe_load_all(result.stdout))
        return {o["metadata"]["name"] for o in objects} | {o["metadata"]["labels"]["app"] for o in objects}

    return run


@pytest.mark.parametrize("project", ["a" * 70, "b" * 50, "Project_" * 12, "2026" * 20])
def test_long_names_differ_between_versions_and_are_dns_labels(names, project):
    first, second = names(project, "1", "--istio_enabled", "True"), names(project, "2", "--istio_enabled", "True")
    assert len(first) == len(second) == 1 and first != second
    for name in first | second:
        assert len(name) <= 63 and DNS_LABEL.match(name), name
    assert names(project, "1", "--istio_enabled", "True") == first  # stable: applying again updates the same objects


def test_a_name_that_fits_is_unchanged(names):
    assert names("diabetes", "2") == {"diabetes-diabetes-ridge-v2"}


def test_a_project_starting_with_a_digit_names_a_service_kubernetes_accepts(names):
    assert names("2026-churn", "1") == {"m-2026-churn-diabetes-ridge-v1"}


def test_the_secret_is_referred_to_as_named_or_refused(registry):
    long_secret = "s" * 100
    result = CliRunner().invoke(main, ["deploy", "p", "diabetes-ridge", "1", "--mlflow_secret", long_secret,
                                       "--dry_run", "--tracking_uri", registry["uri"]])
    env = yaml.safe_load_all(result.stdout).__next__()["spec"]["template"]["spec"]["containers"][0]["env"]
    assert result.exit_code == 0 and env[-1]["valueFrom"]["secretKeyRef"]["name"] == long_secret
    result = CliRunner().invoke(main, ["deploy", "p", "diabetes-ridge", "1", "--mlflow_secret", "My_Secret",
                                       "--dry_run", "--tracking_uri", registry["uri"]])
    assert result.exit_code == 2 and "--mlflow_secret 'My_Secret' is not a Kubernetes Secret name" in result.stderr


def test_a_label_value_keeps_a_leading_digit_that_a_name_cannot():
    from airflow_provider_somlier.lifecycle.deploy import k8s_name

    assert k8s_name("2026-Churn", "v1") == "m-2026-churn-v1"
    assert k8s_name("2026-Churn", letter_first=False) == "2026-churn"
