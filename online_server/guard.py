"""The outermost WSGI layer: whatever escapes the app is still a JSON answer, under any server.

Flask turns every ``Exception`` into the app's JSON error, but ``KeyboardInterrupt``,
``SystemExit`` and other ``BaseException`` raised by a model's own code pass through it, and
gunicorn's workers then answer with an HTML page. This layer answers them as a JSON 500; the
log has the traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)


class JsonGuard:
    """``app.wsgi_app = JsonGuard(app.wsgi_app)``."""

    def __init__(self, wsgi: Callable):
        self.wsgi = wsgi

    def __getattr__(self, name: str):
        return getattr(self.wsgi, name)  # the layers below stay reachable (tests read the hot path's state)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            return self.wsgi(environ, start_response)
        except BaseException:  # noqa: BLE001 - a client gets JSON whatever a model raised
            log.exception("%s %s raised past the app", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            body = json.dumps({"error_code": "INTERNAL_ERROR",
                               "message": "the server failed to answer (see the server log)"}).encode()
            start_response("500 INTERNAL SERVER ERROR",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
