"""``POST /result`` without Flask's per-request machinery, for the requests that succeed.

A prediction is what the server answers thousands of times a second, and for a one-row
predict Flask's request context, routing, hooks and response object cost more than the model
does. This WSGI middleware answers a well-formed prediction itself and hands everything else
to the Flask app untouched -- other routes, other methods, bodies that are not JSON or too
large, a model that is not loaded, input the model rejects, any exception -- so the Flask
routes stay the one place that decides what an answer or an error looks like.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable

from online_server import access

ENDPOINT = "result"


def _is_json(content_type: str) -> bool:
    """The same test as Flask's ``request.is_json``: ``application/json`` or ``application/*+json``."""
    mimetype = content_type.partition(";")[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


class ResultHotPath:
    """Wraps the Flask app's ``wsgi_app``: ``app.wsgi_app = ResultHotPath(app.wsgi_app, state, max_body)``."""

    def __init__(self, flask_wsgi: Callable, state, max_body_bytes: int, path: str = "/result"):
        self.flask_wsgi = flask_wsgi
        self.state = state
        self.max_body_bytes = max_body_bytes
        self.path = path

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            return self.flask_wsgi(environ, start_response)
        started = time.perf_counter()
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if not 0 < length <= self.max_body_bytes or not _is_json(environ.get("CONTENT_TYPE", "")):
            return self.flask_wsgi(environ, start_response)
        body = environ["wsgi.input"].read(length)
        try:
            payload = json.loads(body)
            predictor = self.state.ensure_loaded()
            answer = json.dumps({"result": predictor.predict(payload["test"])}, separators=(",", ":")).encode() + b"\n"
        except Exception:  # noqa: BLE001 - Flask answers it again and owns every error reply
            environ["wsgi.input"] = io.BytesIO(body)
            return self.flask_wsgi(environ, start_response)
        version = self.state.serving_version()
        start_response("200 OK", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(answer))),
            *access.response_headers(version),
        ])
        access.record("POST", self.path, ENDPOINT, 200, time.perf_counter() - started, version)
        return [answer]
