"""MLflowHook against a real MLflow server over HTTP: refs resolve, models load, nothing global changes."""

import json
import os

import pytest

from airflow_provider_somlier.devtools.sample_model import FEATURES, diabetes_frame, train_and_register
from airflow_provider_somlier.errors import ModelNotFoundError
from airflow_provider_somlier.hooks.mlflow import MLflowHook


@pytest.fixture(scope="module")
def served_model(mlflow_server):
    registered = train_and_register(mlflow_server, "served-ridge", alias="prod", experiment="hook-tests")
    return mlflow_server, registered


def test_every_ref_form_resolves_to_the_same_version_over_http(served_model, monkeypatch):
    import mlflow

    url, registered = served_model
    host, port = url.removeprefix("http://").split(":")
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_HTTP", json.dumps({"conn_type": "mlflow", "host": host, "port": int(port)}))
    before = (os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri())
    hook = MLflowHook(mlflow_conn_id="mlflow_http")
    for ref in ("served-ridge@prod", f"served-ridge/{registered.version}", "models:/served-ridge@prod",
                f"models:/served-ridge/{registered.version}"):
        resolved = hook.resolve(ref)
        assert (resolved.version, resolved.run_id) == (registered.version, registered.run_id)
    model = hook.load_pyfunc(resolved)
    assert model.predict(diabetes_frame()[0][list(FEATURES)].head(3)).shape == (3,)
    assert (os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri()) == before
    with pytest.raises(ModelNotFoundError, match="alias 'canary'"):
        hook.resolve("served-ridge@canary")


def test_a_version_is_downloaded_once_per_host_and_found_there_by_the_next_task(served_model, monkeypatch, tmp_path):
    """Two task processes on one host: the first downloads into the host cache, the second loads from it."""
    import subprocess
    import sys

    url, registered = served_model
    host, port = url.removeprefix("http://").split(":")
    env = os.environ | {
        "AIRFLOW_CONN_MLFLOW_HTTP": json.dumps({"conn_type": "mlflow", "host": host, "port": int(port)}),
        "AIRFLOW__SOMLIER__MODEL_CACHE_DIR": str(tmp_path / "models"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "tmp").mkdir()
    task = (
        "import mlflow.artifacts\n"
        "from airflow_provider_somlier.devtools.sample_model import FEATURES, diabetes_frame\n"
        "from airflow_provider_somlier.hooks.mlflow import MLflowHook\n"
        "calls = []\n"
        "real = mlflow.artifacts.download_artifacts\n"
        "mlflow.artifacts.download_artifacts = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "hook = MLflowHook(mlflow_conn_id='mlflow_http')\n"
        f"model = hook.load_pyfunc(hook.resolve('served-ridge/{registered.version}'))\n"
        "print(len(calls), repr(float(model.predict(diabetes_frame()[0][list(FEATURES)].head(1))[0])))\n"
    )
    outputs = [
        subprocess.run([sys.executable, "-c", task], env=env, capture_output=True, text=True, timeout=300)
        for _ in range(2)
    ]
    assert [o.returncode for o in outputs] == [0, 0], outputs[-1].stderr[-2000:]
    (first_downloads, first_prediction), (second_downloads, second_prediction) = (
        o.stdout.split()[-2:] for o in outputs
    )
    assert (first_downloads, second_downloads) == ("1", "0")
    assert first_prediction == second_prediction  # the same files, the same model
    assert "found in the host's model cache" in "".join(outputs[1].stdout + outputs[1].stderr)
    versions = [p for p in (tmp_path / "models").iterdir() if p.is_dir()]
    assert len(versions) == 1 and (versions[0] / ".complete").exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left in the temporary folder

    # the cached copy damaged in place (same size: only loading it can tell): the next task
    # downloads it again instead of failing on it, as every retry would
    weights = [f for f in versions[0].rglob("*") if f.is_file() and f.suffix in (".skops", ".pkl")]
    assert weights
    for file in weights:
        file.write_bytes(b"\0" * file.stat().st_size)
    damaged = subprocess.run([sys.executable, "-c", task], env=env, capture_output=True, text=True, timeout=300)
    assert damaged.returncode == 0, damaged.stderr[-2000:]
    assert damaged.stdout.split()[-2:] == ["1", first_prediction]
    assert "did not load from the host's model cache" in damaged.stdout + damaged.stderr

    # a cache folder this process cannot use: a warning, and a temporary download
    (tmp_path / "not-a-folder").write_text("")
    unusable = subprocess.run([sys.executable, "-c", task], env=env | {
        "AIRFLOW__SOMLIER__MODEL_CACHE_DIR": str(tmp_path / "not-a-folder")}, capture_output=True, text=True, timeout=300)
    assert unusable.returncode == 0, unusable.stderr[-2000:]
    assert unusable.stdout.split()[-2:] == ["1", first_prediction]
    assert "cannot be used by this process" in unusable.stdout + unusable.stderr
