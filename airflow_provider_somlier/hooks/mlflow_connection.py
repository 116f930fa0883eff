"""The ``mlflow`` connection's settings, read and checked, and its credentials handed to MLflow."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from airflow_provider_somlier.errors import InvalidArgumentError, RegistryUnavailableError
from airflow_provider_somlier.hooks.mlflow_form import (
    DEFAULT_DOWNLOAD_TIMEOUT_SECONDS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
)

@dataclass(frozen=True)
class MLflowSettings:
    """What one ``mlflow`` connection says: where the registry is, how to authenticate, how long to wait."""

    tracking_uri: str
    registry_uri: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES
    download_timeout_seconds: float = DEFAULT_DOWNLOAD_TIMEOUT_SECONDS

    @property
    def bound_seconds(self) -> float:
        """The longest a registry call waits before RegistryUnavailableError: attempts plus pauses."""
        pauses = sum(min(2.0**attempt, 8.0) for attempt in range(self.max_retries))
        return self.request_timeout_seconds * (self.max_retries + 1) + pauses

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or self.username)


def _extra(extras: dict[str, Any], name: str) -> Any:
    """An extra as stored by the API/CLI (``name``) or by older forms (``extra__mlflow__name``)."""
    value = extras.get(name)
    return extras.get(f"extra__mlflow__{name}") if value in (None, "") else value


def _number(conn_id: str, extras: dict[str, Any], name: str, default: float, *, integer: bool = False) -> Any:
    value = _extra(extras, name)
    if value in (None, ""):
        return default
    try:
        number = int(str(value)) if integer else float(str(value))
    except ValueError:
        number = None
    if number is None or isinstance(value, bool) or number < 0 or (not integer and number == 0) or number != number:
        expected = "a non-negative integer" if integer else "a positive number of seconds"
        raise InvalidArgumentError(f"connection {conn_id!r}: extra {name} is {value!r}, expected {expected}")
    return number


def settings_from_connection(conn_id: str, conn: Any) -> MLflowSettings:
    """Read and check one connection; a bad extra is named before anything is called."""
    extras = conn.extra_dejson
    host = (conn.host or "").strip()
    if "://" in host or host in ("databricks",):
        tracking = host
    elif host:
        scheme = conn.schema or "http"
        tracking = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    else:
        tracking = _extra(extras, "tracking_uri") or ""
    if not tracking:
        raise RegistryUnavailableError(
            f"connection {conn_id!r} names no MLflow tracking URI: set its Host "
            "to a URI such as sqlite:////path/mlflow.db or http://mlflow:5000"
        )
    if conn.login and not conn.password:
        raise InvalidArgumentError(f"connection {conn_id!r} has a Login but no Password: basic auth needs both")
    return MLflowSettings(
        tracking_uri=tracking,
        registry_uri=_extra(extras, "registry_uri") or tracking,
        username=conn.login or None,
        password=conn.password or None,
        token=_extra(extras, "token") or None,
        request_timeout_seconds=_number(conn_id, extras, "request_timeout_seconds", DEFAULT_REQUEST_TIMEOUT_SECONDS),
        max_retries=_number(conn_id, extras, "max_retries", DEFAULT_MAX_RETRIES, integer=True),
        download_timeout_seconds=_number(conn_id, extras, "download_timeout_seconds", DEFAULT_DOWNLOAD_TIMEOUT_SECONDS),
    )


# MLflow reads HTTP credentials only from its environment variables (tracking, registry and
# artifact calls alike). A connection with credentials hands them over for the duration of
# each of its calls, one such call at a time per process; connections without credentials
# never touch the environment.
_CREDENTIALS_LOCK = threading.Lock()
_CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@contextlib.contextmanager
def credentials(settings: MLflowSettings, wait_seconds: float) -> Iterator[None]:
    if not settings.has_credentials:
        yield
        return
    if not _CREDENTIALS_LOCK.acquire(timeout=wait_seconds):
        raise RegistryUnavailableError(
            f"another call with MLflow credentials has held them for over {wait_seconds:g} s in this process"
        )
    saved = {name: os.environ.get(name) for name in _CREDENTIAL_VARIABLES}
    try:
        values = (
            {"MLFLOW_TRACKING_TOKEN": settings.token}
            if settings.token
            else {"MLFLOW_TRACKING_USERNAME": settings.username, "MLFLOW_TRACKING_PASSWORD": settings.password}
        )
        for name in _CREDENTIAL_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update({name: value for name, value in values.items() if value})
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _CREDENTIALS_LOCK.release()
