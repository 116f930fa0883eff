"""Call BigQuery within a deadline: a result, or a named, retryable error.

Every call :class:`~airflow_provider_somlier.hooks.bigquery.SomlierBigQueryHook`
makes goes through :meth:`WarehouseCalls.call`. The client libraries' own retries
are switched off at each call site (``retry=None``, ``num_retries=0``) because their
defaults wait up to ten minutes (REST), a day (Storage Read) or forever (a socket
that never answers); instead each attempt gets what is left of one deadline as its
transport timeout, transient failures are retried with backoff inside that
deadline, and when it runs out the caller sees :class:`WarehouseUnavailableError`
naming the step and the endpoint. A worker slot is never held by a dead socket for
longer than the connection's ``retry_deadline_seconds``.

Errors that are answers (not found, bad request, permission) pass through untouched:
retrying them cannot help, and the hook turns the ones users cause into named errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from airflow_provider_somlier.errors import WarehouseUnavailableError

T = TypeVar("T")

log = logging.getLogger(__name__)

# BigQuery error reasons worth another attempt (the client library's own list).
_RETRYABLE_REASONS = frozenset({"backendError", "rateLimitExceeded", "internalError", "badGateway", "jobBackendError"})
_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the network's fault (or the service's momentary one), not an answer."""
    import http.client

    import requests
    from google.api_core import exceptions as api
    from google.auth.exceptions import TransportError

    if isinstance(exc, (ConnectionError, TimeoutError, http.client.HTTPException, TransportError)):
        return True
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return True
    if isinstance(exc, (api.ServiceUnavailable, api.DeadlineExceeded, api.RetryError, api.Unknown)):
        return True
    if isinstance(exc, api.GoogleAPICallError):
        if exc.code in _RETRYABLE_STATUS:
            return True
        reasons = {error.get("reason") for error in (exc.errors or []) if isinstance(error, dict)}
        return bool(reasons & _RETRYABLE_REASONS)
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpc ships with the Storage Read client
        grpc = None
    if grpc is not None and isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN)
    try:
        from google.resumable_media.common import InvalidResponse
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, InvalidResponse):
        status = getattr(exc.response, "status_code", None)
        return status in _RETRYABLE_STATUS or (status is not None and status >= 500)
    return False


class WarehouseCalls:
    """Runs client calls within ``deadline_seconds`` each, naming ``endpoint`` when they fail."""

    def __init__(self, deadline_seconds: float, endpoint: str) -> None:
        if not deadline_seconds > 0:
            raise ValueError(f"deadline_seconds must be positive, got {deadline_seconds!r}")
        self.deadline_seconds = float(deadline_seconds)
        self.endpoint = endpoint

    def call(self, step: str, fn: Callable[..., T], *args, deadline_seconds: float | None = None, **kwargs) -> T:
        """``fn(*args, timeout=<seconds left>, **kwargs)``, retried on transient failures until the deadline.

        ``fn`` must accept ``timeout`` (every google-cloud client method does) and should
        have its own retry switched off by the caller. Each attempt's timeout is what is
        left of the deadline, so a socket that never answers costs one deadline, not one
        per attempt.
        """
        budget = self.deadline_seconds if deadline_seconds is None else deadline_seconds
        deadline = time.monotonic() + budget
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                return fn(*args, timeout=max(remaining, 0.01), **kwargs)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                remaining = deadline - time.monotonic()
                pause = min(0.2 * 2 ** (attempt - 1), 5.0)
                if remaining <= pause:
                    raise self.unavailable(step, exc, budget, attempt) from exc
                log.warning("BigQuery %s failed (attempt %d, retrying for %.0f s more): %s", step, attempt, remaining, exc)
                time.sleep(pause)

    def unavailable(self, step: str, exc: BaseException, seconds: float, attempts: int = 1) -> WarehouseUnavailableError:
        """The named error for ``step`` failing after ``seconds``."""
        return WarehouseUnavailableError(
            f"BigQuery {step} at {self.endpoint} failed for {seconds:.0f} s ({attempts} attempt(s)): "
            f"{type(exc).__name__}: {exc}. The warehouse is unreachable or not answering; the task "
            "can be retried as is (raise retry_deadline_seconds on the connection to wait longer)"
        )
