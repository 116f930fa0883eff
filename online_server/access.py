"""What every answered request leaves behind: a metrics sample, an access-log line, two headers.

Both the Flask routes and the ``/result`` hot path (``online_server.hot_path``) call these, so a
request is counted and logged the same way whichever of them answered it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import urllib.parse

from online_server import metrics

access_log = logging.getLogger("somlier.online.access")


@functools.lru_cache(maxsize=64)
def header_value(version: str) -> str:
    """The version as printable ASCII (percent-encoded beyond it): an HTTP header cannot carry more."""
    return urllib.parse.quote(version, safe="/@:._-+=~!$&'()*,;")


def response_headers(version: str) -> list[tuple[str, str]]:
    """The answering model's version (when there is one) and the worker that answered."""
    headers = [("X-Worker-Pid", str(os.getpid()))]
    if version:
        headers.append(("X-Model-Version", header_value(version)))
    return headers


def record(method: str, path: str, endpoint: str, status: int, seconds: float, version: str) -> None:
    """Count the request in the Prometheus metrics and write one JSON access-log line."""
    metrics.observe(endpoint, status, seconds)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(json.dumps({
            "method": method, "path": path, "status": status,
            "ms": round(seconds * 1000, 2), "model_version": version,
        }))
