"""The ``mlflow`` connection form, declared the Airflow 3 way: ``conn-fields`` and ``ui-field-behaviour``.

The UI reads these from ``get_provider_info()`` without importing the hook, so no
``flask_appbuilder`` widgets are involved. This module imports nothing: provider info is
read while Airflow itself is still importing.
"""

from __future__ import annotations

from typing import Any

DEFAULT_REQUEST_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_DOWNLOAD_TIMEOUT_SECONDS = 900.0

CONNECTION_TYPE: dict[str, Any] = {
    "connection-type": "mlflow",
    "hook-class-name": "airflow_provider_somlier.hooks.mlflow.MLflowHook",
    "hook-name": "MLflow",
    "conn-fields": {
        "registry_uri": {
            "label": "Registry URI",
            "schema": {"type": ["string", "null"]},
            "description": "Only when the model registry lives elsewhere than the tracking server.",
        },
        "token": {
            "label": "Bearer token",
            "schema": {"type": ["string", "null"], "format": "password"},
            "description": "Token auth (sent as 'Authorization: Bearer'); for basic auth use Login and Password.",
        },
        "request_timeout_seconds": {
            "label": "Request timeout (seconds)",
            "schema": {"type": ["number", "null"], "default": DEFAULT_REQUEST_TIMEOUT_SECONDS, "exclusiveMinimum": 0},
            "description": "Deadline of one registry call; a registry that does not answer in time counts as down.",
        },
        "max_retries": {
            "label": "Retries",
            "schema": {"type": ["integer", "null"], "default": DEFAULT_MAX_RETRIES, "minimum": 0},
            "description": "Further attempts of a call that timed out or could not connect, with 1, 2, 4 s pauses.",
        },
        "download_timeout_seconds": {
            "label": "Model download timeout (seconds)",
            "schema": {"type": ["number", "null"], "default": DEFAULT_DOWNLOAD_TIMEOUT_SECONDS, "exclusiveMinimum": 0},
            "description": "Deadline of downloading one model version's artifacts.",
        },
    },
    "ui-field-behaviour": {
        "hidden-fields": ["extra"],
        "relabeling": {
            "host": "Tracking URI or host",
            "schema": "Scheme (http/https)",
            "login": "Username (basic auth)",
            "password": "Password (basic auth)",
        },
        "placeholders": {
            "host": "http://mlflow.internal:5000  or  sqlite:////opt/mlflow/mlflow.db",
            "schema": "http",
            "port": "5000",
        },
    },
}
