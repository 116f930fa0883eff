"""``--check_airflow``: wait until Airflow lists the DAG, or report its import error.

Uses the Airflow 3 REST API v2: a token from ``/auth/token``, then ``/api/v2/dags/{id}``
and ``/api/v2/importErrors`` until the DAG appears or an import error names its file.
"""

from __future__ import annotations

import time

from airflow_provider_somlier.errors import SomlierError
from airflow_provider_somlier.generate.settings import Settings


class AirflowCheckError(SomlierError):
    """Airflow did not load the published DAG."""


def _token(session, settings: Settings) -> str:
    url = f"{settings.airflow_api_url.rstrip('/')}/auth/token"
    if settings.airflow_username:
        answer = session.post(url, json={"username": settings.airflow_username, "password": settings.airflow_password or ""}, timeout=10)
    else:
        answer = session.get(url, timeout=10)  # simple auth manager with all-admins
    if answer.status_code >= 400:
        raise AirflowCheckError(f"Airflow at {settings.airflow_api_url} refused a token ({answer.status_code})")
    return answer.json()["access_token"]


def wait_for_dag(dag_id: str, file_name: str, settings: Settings, *, poll_seconds: float = 2.0) -> dict:
    """Poll until ``dag_id`` is listed without import errors; return its API record."""
    import requests

    base = settings.airflow_api_url.rstrip("/")
    deadline = time.monotonic() + settings.check_airflow_timeout
    with requests.Session() as session:
        try:
            session.headers["Authorization"] = f"Bearer {_token(session, settings)}"
        except requests.RequestException as exc:
            raise AirflowCheckError(f"Airflow API at {base} is unreachable: {type(exc).__name__}") from None
        while True:
            try:
                errors = session.get(f"{base}/api/v2/importErrors", params={"limit": 100}, timeout=10).json()
                for error in errors.get("import_errors", []):
                    if str(error.get("filename", "")).endswith(file_name):
                        raise AirflowCheckError(f"Airflow could not import {file_name}:\n{error.get('stack_trace', '')}")
                answer = session.get(f"{base}/api/v2/dags/{dag_id}", timeout=10)
                if answer.status_code == 200:
                    return answer.json()
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AirflowCheckError(
                    f"DAG {dag_id!r} did not appear in Airflow at {base} within "
                    f"{settings.check_airflow_timeout:.0f}s (is the DAG processor reading the dags folder?)"
                )
            time.sleep(poll_seconds)
