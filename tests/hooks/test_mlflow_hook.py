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
