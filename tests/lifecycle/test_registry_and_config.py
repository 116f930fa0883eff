"""search, register and config commands against a real MLflow server on loopback and a real project folder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from airflow_provider_somlier.cli import main
from airflow_provider_somlier.devtools.sample_model import train_and_register


@pytest.fixture(scope="module")
def lifecycle_registry(mlflow_server):
    runs = [train_and_register(mlflow_server, "scratch", alpha=a, experiment="diabetes-project") for a in (10.0, 0.01)]
    return mlflow_server, runs


def somlier(*args, uri=None):
    result = CliRunner().invoke(main, [*args, *(["--tracking_uri", uri] if uri else [])])
    return result.exit_code, result.stdout, result.stderr


def test_search_orders_runs_by_the_metric(lifecycle_registry):
    uri, runs = lifecycle_registry
    code, out, _ = somlier("search", "diabetes-project", "training_mae", "ASC", "--output", "json", uri=uri)
    assert code == 0
    found = json.loads(out)
    assert [r["metric_value"] for r in found] == sorted(r["metric_value"] for r in found)
    assert found[0]["params"]["alpha"] == "0.01"


@pytest.mark.parametrize("args, message", [
    (("search", "no-such-project", "training_mae", "ASC"), "no MLflow experiment"),
    (("search", "diabetes-project", "no_metric", "ASC"), "'no_metric'"),
    (("search", "diabetes-project", "training_mae", "UP"), "ASC or DESC"),
    (("register", "0" * 32, "m"), "does not exist"),
])
def test_bad_search_and_register_inputs_exit_2(lifecycle_registry, args, message):
    uri, _ = lifecycle_registry
    code, _, err = somlier(*args, uri=uri)
    assert code == 2 and message in err


def test_register_says_whether_the_new_version_is_better(lifecycle_registry):
    uri, runs = lifecycle_registry
    worse, better = runs
    code, out, _ = somlier("register", worse.run_id, "diabetes-champion", uri=uri)
    first = json.loads(out)
    assert code == 0 and first["model_version"] == "1" and first["is_newer_version"] is True
    second = json.loads(somlier("register", better.run_id, "diabetes-champion", uri=uri)[1])
    assert second["model_version"] == "2" and second["is_newer_version"] is True
    third = json.loads(somlier("register", worse.run_id, "diabetes-champion", uri=uri)[1])
    assert third["is_newer_version"] is False and "not better" in third["message"]


SOMLIER_YAML = """
project:
  docker: {env: [], name: nuj-test, tags: [latest], volumes: []}
  name: nuj-test
  python: {requirements_txt: requirements.txt, version: 3.8.7}
model: {assets: [], config: {}, name: nuj-test, tags: [dev], version: v0.0.1}
entrypoint:
  main: {command: bash, args: ["entrypoint.sh"]}
  broken: {command: bash, args: ["-c", "exit 3"]}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "somlier.yaml").write_text(SOMLIER_YAML)
    (tmp_path / "entrypoint.sh").write_text("echo 'hello world!!'\n")
    (tmp_path / "requirements.txt").write_text("pandas==1.2.1\nnumpy==1.1.1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_config_show_prints_the_settings_and_dependencies(project):
    code, out, _ = somlier("config", "show")
    assert code == 0 and "Model Name: nuj-test" in out and "Docker Image Name: nuj-test:['latest']" in out
    code, out, _ = somlier("config", "show", "-d")
    assert "pandas==1.2.1" in out and "numpy==1.1.1" in out


def test_config_run_runs_the_entrypoint_in_the_project_folder(project):
    code, out, _ = somlier("config", "run", "main")
    result = json.loads(out)
    assert code == 0 and result["name"] == "main" and result["stdout"] == "hello world!!\n"
    code, out, _ = somlier("config", "run", "broken")
    assert code == 1 and json.loads(out)["returncode"] == 3


@pytest.mark.parametrize("yaml_text, message", [
    ("project: {nmae: x}\n", "unknown key 'nmae' in project"),
    ("model: {tags: dev}\n", "model.tags must be a list"),
    ("entrypoint: {main: {args: []}}\n", "entrypoint.main has no command"),
    ("model: [1\n", "not valid YAML"),
])
def test_bad_somlier_yaml_names_the_key(project, yaml_text, message):
    (project / "somlier.yaml").write_text(yaml_text)
    code, _, err = somlier("config", "show")
    assert code == 2 and message in err


def test_an_unknown_entrypoint_is_named(project):
    code, _, err = somlier("config", "run", "train")
    assert code == 2 and "entrypoint 'train'" in err and "main, broken" in err


def test_saving_a_model_in_an_airflow_process_does_not_flood_the_log(tmp_path):
    """skops looks names up on every loaded module; Airflow's deprecated aliases each warn."""
    import warnings

    import airflow.providers.google  # noqa: F401 - the modules an Airflow worker has loaded

    from airflow_provider_somlier.devtools.sample_model import train_and_register

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_and_register(f"sqlite:///{tmp_path / 'mlflow.db'}", "quiet-save", artifact_root=(tmp_path / "a").as_uri())
    assert [str(w.message) for w in caught if str(w.message).startswith("The `airflow.")] == []


def test_a_bogus_tracking_uri_is_named(tmp_path):
    code, _, err = somlier("search", "p", "m", "ASC", uri="bogus://nowhere")
    assert code == 2 and "tracking URI 'bogus://nowhere' is not one MLflow can use" in err and "Traceback" not in err


def test_a_sqlite_registry_in_a_missing_folder_is_named_and_nothing_is_created(tmp_path):
    code, _, err = somlier("search", "p", "m", "ASC", uri=f"sqlite:///{tmp_path}/no-such-folder/mlflow.db")
    assert code == 2 and "which is not a folder" in err and "no-such-folder" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_registry_is_reported_at_once():
    import socket
    import time

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    started = time.monotonic()
    code, _, err = somlier("register", "0" * 32, "m", uri=f"http://127.0.0.1:{port}")
    assert code == 1 and f"MLflow at http://127.0.0.1:{port} cannot be reached" in err and "refused" in err, err
    assert time.monotonic() - started < 60


def test_a_silent_registry_is_reported_after_the_probe_s_deadline():
    import socket

    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        code, _, err = somlier("search", "p", "m", "ASC", uri=f"http://127.0.0.1:{port}")
    finally:
        silent.close()
    assert code == 1 and f"MLflow at http://127.0.0.1:{port} did not answer within 10 s" in err, err


def test_the_readme_s_somlier_yaml_uses_every_key_and_is_accepted(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    from airflow_provider_somlier.lifecycle.config import SCHEMA

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = re.search(r"Every key it accepts:\n\n```yaml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "somlier.yaml").write_text(example)
    (tmp_path / "requirements.txt").write_text("scikit-learn\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = somlier("config", "show")
    assert code == 0, err
    assert "Docker Image Name: gcr.io/my-project/diabetes:['latest']" in out
    import yaml

    data = yaml.safe_load(example)
    for section in ("project", "model"):
        keys = {key for key, value in SCHEMA[section].items() if not isinstance(value, dict)}
        keys |= {f"{key}.{sub}" for key, value in SCHEMA[section].items() if isinstance(value, dict) for sub in value}
        nested = {key for key, value in SCHEMA[section].items() if isinstance(value, dict)}
        given = {key for key in data[section] if key not in nested}
        given |= {f"{key}.{sub}" for key in nested & set(data[section]) for sub in data[section][key]}
        assert given == keys, f"{section}: the README leaves out {sorted(keys - given)}"
