"""The lifecycle web server's seed-shaped answers, through Flask's test client on a real registry."""

import re

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
    ("/deploy", {"project_name": "p", "model_name": "web-model", "model_version": 1, "istio_enabled": "yes"},
     "istio_enabled must be true or false, got 'yes'"),
    ("/deploy", {"project_name": "p", "model_name": "web-model", "model_version": 99}, "has no version 99"),
    ("/register", {"run_id": "0" * 32, "model_name": "it's"}, "it's"),
    ("/search", {"project_name": "it's", "standard_metric": "m", "order_by": "ASC"}, "no MLflow experiment"),
    ("/train", {"project_name": "p", "project_ref": "main", "github_uri": "x", "params": [1]}, "params must be an object"),
    ("/train", {"project_name": "p", "project_ref": "main", "github_uri": "x", "max_parallel": "2"},
     "max_parallel must be an integer of at least 1, got '2'"),
    ("/train", {"project_name": "p", "project_ref": "main", "github_uri": "x", "max_parallel": 0}, "at least 1"),
    ("/train", {"project_name": "p", "project_ref": "main", "github_uri": "x", "params": {"a": "0..1e12..1"}},
     "--a '0..1e12..1' has 1000000000000 values, over the limit of 256"),
    ("/train", {"project_name": "p", "project_ref": "main", "github_uri": "x", "params": {"a": "0..1..0"}},
     "INCREMENT 0 must be above 0"),
])
def test_bad_requests_are_400_with_a_message(web, path, payload, message):
    client, _ = web
    answer = client.post(path, json=payload)
    assert answer.status_code == 400 and message in answer.get_json()["message"]
    assert re.fullmatch(r"[A-Z]+(_[A-Z]+)*", answer.get_json()["error_code"]), answer.get_json()


def test_an_error_code_is_upper_snake_like_every_other():
    from airflow_provider_somlier.errors import ModelNotFoundError, RunNotRegistrableError
    from airflow_provider_somlier.lifecycle.web import error_code

    assert (error_code(ModelNotFoundError("x")), error_code(RunNotRegistrableError("x"))) == (
        "MODEL_NOT_FOUND", "RUN_NOT_REGISTRABLE")


def test_a_string_false_is_false(web):
    client, runs = web
    registered = client.post("/register", json={"run_id": runs[0].run_id, "model_name": "web-strict"}).get_json()
    deployed = client.post("/deploy", json={"project_name": "web", "model_name": "web-strict",
                                            "model_version": registered["model_version"], "use_k8s_job": "false"})
    assert deployed.get_json()["message"] == "dry run: Deployment, Service"


@pytest.mark.parametrize("method, path, status", [("get", "/nowhere", 404), ("get", "/search", 405), ("post", "/train/x", 405)])
def test_unknown_routes_and_methods_answer_json(web, method, path, status):
    client, _ = web
    answer = getattr(client, method)(path)
    assert answer.status_code == status and answer.is_json and answer.get_json()["message"]


def test_train_answers_at_once_and_reports_each_combination(tmp_path, monkeypatch):
    import time

    from tests.lifecycle.test_train import _project_repo

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps run artifacts under ./mlruns
    repo = _project_repo(tmp_path)
    client = create_app(f"sqlite:///{tmp_path / 'mlflow.db'}").test_client()
    started = client.post("/train", json={"project_name": "example-projects/ridge", "project_ref": "main",
                                          "github_uri": str(repo), "params": {"alpha": 0.5, "fail": "0,1"}})
    assert started.status_code == 202 and started.get_json()["combinations"] == 2
    job_id = started.get_json()["job_id"]
    deadline = time.monotonic() + 600
    while (answer := client.get(f"/train/{job_id}").get_json())["status"] == "running" and time.monotonic() < deadline:
        time.sleep(1)
    assert answer["status"] == "failed" and len(answer["commit"]) == 40
    by_fail = {c["params"]["fail"]: c for c in answer["combinations"]}
    assert by_fail[0]["status"] == "succeeded" and by_fail[0]["run_id"]
    assert by_fail[1]["status"] == "failed" and "fails on purpose" in by_fail[1]["reason"]
    assert client.get("/train/nope").status_code == 404


def test_a_single_combination_job_keeps_the_seed_fields():
    from airflow_provider_somlier.lifecycle.jobs import TrainJob
    from airflow_provider_somlier.lifecycle.train import TrainResult

    job = TrainJob("j1", [{"alpha": 0.5}], status="succeeded")
    job.results[0] = TrainResult({"alpha": 0.5}, "abc123", "succeeded")
    answer = job.as_json()
    assert (answer["run_id"], answer["status"]) == ("abc123", "succeeded")


def test_a_one_combination_job_shows_running_while_it_trains(tmp_path, monkeypatch):
    """The training is held on an event, so ``running`` is observed every time, not by luck of timing."""
    import threading
    import time

    from airflow_provider_somlier.lifecycle import train as train_module
    from airflow_provider_somlier.lifecycle.train import TrainResult
    from tests.lifecycle.test_train import _project_repo

    monkeypatch.chdir(tmp_path)
    training, release = threading.Event(), threading.Event()

    def held_training(checkout, experiment_id, params, tracking_uri):
        training.set()
        assert release.wait(60)
        return TrainResult(params, "r" * 32, "succeeded", "", checkout.commit)

    monkeypatch.setattr(train_module, "train_one", held_training)
    client = create_app(f"sqlite:///{tmp_path / 'mlflow.db'}").test_client()
    started = client.post("/train", json={"project_name": "example-projects/ridge", "project_ref": "main",
                                          "github_uri": str(_project_repo(tmp_path)), "params": {"alpha": 0.5}})
    assert started.status_code == 202 and started.get_json()["status"] == "running"
    url = f"/train/{started.get_json()['job_id']}"
    assert client.get(url).get_json()["status"] == "running"  # cloning: the job runs, the combination waits
    assert training.wait(120)
    during = client.get(url).get_json()
    assert (during["status"], during["combinations"][0]["status"], during["run_id"]) == ("running", "running", "")
    release.set()
    deadline = time.monotonic() + 60
    while (after := client.get(url).get_json())["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    finished = (after["status"], after["combinations"][0]["status"], after["run_id"])
    assert finished == ("succeeded", "succeeded", "r" * 32)


TRAIN = '{"project_name": "example-projects/ridge", "project_ref": "master", "github_uri": "x", "params": {"alpha": %s}}'


@pytest.mark.parametrize("alpha, message", [
    ("[0.1, NaN]", "the body holds NaN, which JSON does not allow"),
    ("Infinity", "the body holds Infinity"),
    ("[-Infinity]", "the body holds -Infinity"),
    ("[0.1, 1e999]", "the body holds 1e999, which is not a finite number"),
])
def test_non_finite_numbers_are_refused_not_echoed_as_invalid_json(web, alpha, message):
    client, _ = web
    answer = client.post("/train", data=TRAIN % alpha, content_type="application/json")
    assert answer.status_code == 400 and message in answer.get_json()["message"]


@pytest.mark.parametrize("data, content_type, message", [
    ('{"project_name": "web-project"}', None, "send Content-Type: application/json (got none)"),
    ('{"project_name": "web-project"}', "application/x-www-form-urlencoded",
     "send Content-Type: application/json (got 'application/x-www-form-urlencoded')"),
    (b'{"project_name": "web\xff"}', "application/json", "the body is not UTF-8: byte 0xff at offset 21"),
    ("", "application/json", "the body is empty"),
    ('{"project_name": ', "application/json", "the body is not JSON"),
    ("[1, 2]", "application/json", "the body must be a JSON object, got list"),
    ('{"project_name": "a", "project_name": "b"}', "application/json", "the body gives 'project_name' twice"),
])
def test_a_body_that_is_not_a_json_object_says_why(web, data, content_type, message):
    client, _ = web
    answer = client.post("/search", data=data, content_type=content_type)
    assert answer.status_code == 400 and answer.is_json and message in answer.get_json()["message"]


def test_answers_are_strict_json():
    """An answer holding NaN fails on the server (500, as JSON) instead of reaching the client as invalid JSON."""
    import json

    app = create_app("sqlite:///unused.db")

    @app.get("/nan")
    def _nan():
        return {"value": float("nan")}

    answer = app.test_client().get("/nan")
    assert answer.status_code == 500 and json.loads(answer.get_data(as_text=True))["error_code"] == "INTERNAL_ERROR"


def _strict_json(raw: bytes):
    """Parse as a strict client would: NaN and Infinity are not JSON."""
    import json

    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


def _free_port() -> int:
    """A port in 43300-43399, the range these tests may serve on."""
    import socket

    for port in range(43300, 43400):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 43300-43399")


@pytest.fixture
def served(tmp_path):
    """The lifecycle web server as users run it (``flask run``), in its own process."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "SOMLIER_PROJECTS_REPO": str(tmp_path / "no-such-repo")}
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "airflow_provider_somlier.lifecycle.web:create_app()", "run",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/train/none", timeout=5)
            except urllib.error.HTTPError:
                break  # a 404 answer: the server is up
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the web server did not start"
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(30)


def _send(url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, object]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, _strict_json(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, _strict_json(answer.read())


def test_the_running_server_refuses_nan_and_answers_strict_json(served):
    """The reviewer's request: NaN in a grid was accepted (202) and echoed as ``"alpha":NaN`` by ``GET /train/<id>``."""
    import time

    train = b'{"project_name":"example-projects/ridge","project_ref":"master","params":{"alpha":%s}}'
    status, answer = _send(f"{served}/train", train % b"[0.1, NaN]", "application/json")
    assert status == 400 and "the body holds NaN" in answer["message"]
    status, answer = _send(f"{served}/train", train % b"0.5", None)  # urllib sends a form type
    assert status == 400 and "send Content-Type: application/json" in answer["message"]
    status, answer = _send(f"{served}/search", b'{"project_name": "\xff"}', "application/json")
    assert status == 400 and "the body is not UTF-8: byte 0xff" in answer["message"]
    # "nan" as text stays text, so the job's answer is strict JSON while it runs and after it ends
    status, answer = _send(f"{served}/train", train % b'"0.1,nan"', "application/json")
    assert status == 202, answer
    deadline = time.monotonic() + 60
    while (job := _send(f"{served}{answer['url']}")[1])["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [c["params"]["alpha"] for c in job["combinations"]] == [0.1, "nan"]
