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


class _CredentialGate:
    """Who may call an HTTP registry while MLflow's credential variables are set.

    MLflow reads HTTP credentials only from its environment variables (tracking, registry
    and artifact calls alike). A call of a connection with credentials sets them and runs
    alone; calls of connections without credentials run side by side, never while
    another connection's credentials are set. Every hold is bounded by the holder's own
    deadline, enforced by the caller: a call abandoned at its deadline goes on without
    the credentials.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharing = 0
        self._exclusive = False

    def _wait(self, ready: Any, seconds: float) -> None:
        if not self._condition.wait_for(ready, timeout=seconds):
            raise RegistryUnavailableError(
                f"a call of another MLflow connection with credentials held the registry client for over "
                f"{seconds:g} s in this process"
            )

    @contextlib.contextmanager
    def hold(self, exclusive: bool, seconds: float) -> Iterator[None]:
        with self._condition:
            if exclusive:
                self._wait(lambda: not self._exclusive and self._sharing == 0, seconds)
                self._exclusive = True
            else:
                self._wait(lambda: not self._exclusive, seconds)
                self._sharing += 1
        try:
            yield
        finally:
            with self._condition:
                if exclusive:
                    self._exclusive = False
                else:
                    self._sharing -= 1
                self._condition.notify_all()


_GATE = _CredentialGate()
_CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@contextlib.contextmanager
def credentials(settings: MLflowSettings, wait_seconds: float) -> Iterator[None]:
    """Hand this connection's credentials to MLflow for the block (none for local stores).

    Enter and leave it in the caller's thread, around the (bounded) wait for the call.
    """
    if not settings.tracking_uri.startswith(("http://", "https://")) and not settings.has_credentials:
        yield
        return
    with _GATE.hold(settings.has_credentials, wait_seconds):
        if not settings.has_credentials:
            yield
            return
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
