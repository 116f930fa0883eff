"""The lifecycle web server's seed-shaped answers, through Flask's test client on a real registry."""

import pytest

from airflow_provider_somlier.devtools.sample_model import train_and_register
from airflow_provider_somlier.lifecycle.web import create_app


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    runs = [train_and_register(uri, "scratch", alpha=a, experiment="web-project", artifact_root=(folder / "a").as_uri())
            for a in (10.0, 0.01)]
    return create_app(uri).test_client(), runs


def test_search_register_deploy_answer_as_the_seed_shows(web):
    client, runs = web
    best = client.post("/search", json={"project_name": "web-project", "standard_metric": "training_mae", "order_by": "ASC"})
    assert best.status_code == 200 and best.get_json()["run_id"] == runs[1].run_id
    assert set(best.get_json()) == {"run_id", "metric_value"}
    registered = client.post("/register", json={"run_id": runs[1].run_id, "model_name": "web-model"}).get_json()
    assert set(registered) == {"model_version", "is_newer_version", "message"} and registered["is_newer_version"] is True
    deployed = client.post("/deploy", json={"project_name": "web", "model_name": "web-model",
                                            "model_version": registered["model_version"], "istio_enabled": True})
    assert deployed.get_json() == {"status": "validated", "message": "dry run: Deployment, Service, VirtualService"}


@pytest.mark.parametrize("path, payload, message", [
    ("/search", {"project_name": "web-project"}, "missing field(s) standard_metric, order_by"),
    ("/search", {"project_name": "nope", "standard_metric": "m", "order_by": "ASC"}, "no MLflow experiment"),
    ("/register", {"run_id": "0" * 32, "model_name": "m"}, "does not exist"),
    ("/train", {"project_name": "p", "project_ref": "main"}, "no github_uri"),
    ("/deploy", {"project_name": "p", "model_name": "m", "model_version": "x"}, "'x'"),
])
def test_bad_requests_are_400_with_a_message(web, path, payload, message):
    client, _ = web
    answer = client.post(path, json=payload)
    assert answer.status_code == 400 and message in answer.get_json()["message"]
