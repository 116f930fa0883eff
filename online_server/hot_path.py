"""``POST /result`` without Flask's per-request machinery, for the requests that succeed.

A prediction is what the server answers thousands of times a second, and for a one-row
predict Flask's request context, routing, hooks and response object cost more than the model
does. This WSGI middleware answers a well-formed prediction itself and hands everything else
to the Flask app untouched -- other routes, other methods, bodies that are not JSON or too
large, a model that is not loaded, input the model rejects, any exception -- so the Flask
routes stay the one place that decides what an answer or an error looks like.

One-row inputs to a model that predicts row by row (``Predictor.batchable``) are computed
in batches with those of concurrent requests (``online_server.batching``); the answer,
its ``X-Model-Version`` and the metrics all name the predictor that computed it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from online_server import access, metrics
from online_server.batching import Gathering, Ticket
from online_server.wire import encode_answer, is_json, parse_json

ENDPOINT = "result"
TICKET = "somlier.ticket"  # the WSGI environ key a server uses to hand the app a request's Ticket
# What the model raised on this request, handed to the Flask route with it: the route answers
# that error instead of predicting again (a failing predict ran twice, and a slow failure's
# second run could pass the predict deadline and cost the worker).
PREDICT_FAILURE = "somlier.predict_failure"


def is_one_row(data: Any) -> bool:
    """One row of values or one object of feature: value (a list of rows is predicted as sent)."""
    return type(data) is dict or (type(data) is list and bool(data) and type(data[0]) not in (list, dict))


class ResultHotPath:
    """Wraps the Flask app's ``wsgi_app``: ``app.wsgi_app = ResultHotPath(app.wsgi_app, state, settings)``."""

    def __init__(self, flask_wsgi: Callable, state, settings, path: str = "/result"):
        self.flask_wsgi = flask_wsgi
        self.state = state
        self.max_body_bytes = settings.max_body_bytes
        self.max_batch = max(1, settings.max_batch)
        self.max_wait = max(0.0, settings.max_batch_wait_ms / 1000)
        self.path = path
        self.gathering = Gathering()  # when the server hands out no tickets (sync, gthread, a test client)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        ticket: Ticket | None = environ.get(TICKET)
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            if ticket is not None:
                ticket.leave()
            return self.flask_wsgi(environ, start_response)
        if ticket is None:
            ticket = self.gathering.arrive()[0]
        started = time.perf_counter()
        body = None
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
            if not 0 < length <= self.max_body_bytes or not is_json(environ.get("CONTENT_TYPE", "")):
                raise LookupError("for the Flask route")
            body = environ["wsgi.input"].read(length)
            data = parse_json(body)["test"]
        except Exception:  # noqa: BLE001 - Flask answers it again and owns every error reply
            ticket.leave()
            if body is not None:
                environ["wsgi.input"] = io.BytesIO(body)
            return self.flask_wsgi(environ, start_response)
        try:
            predictor, output = self.predict(data, ticket)
            answer = encode_answer(output)
        except BaseException as exc:  # noqa: BLE001 - the model's own failure: Flask answers it, without predicting again
            ticket.leave()
            environ["wsgi.input"] = io.BytesIO(body)
            environ[PREDICT_FAILURE] = exc
            return self.flask_wsgi(environ, start_response)
        version = predictor.version
        start_response("200 OK", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(answer))),
            *access.response_headers(version),
        ])
        access.record("POST", self.path, ENDPOINT, 200, time.perf_counter() - started, version)
        return [answer]

    def predict(self, data: Any, ticket: Ticket) -> tuple[Any, Any]:
        """(the predictor that computed it, its answer)."""
        serving = self.state.predictor
        if self.max_batch > 1 and getattr(serving, "batchable", False) and is_one_row(data):
            serving.check_row(data)  # a row refused alone is refused here, never predicted in a batch
            return ticket.predict(data, self.compute, self.max_batch, self.max_wait)
        ticket.leave()
        predictor = self.state.ensure_loaded()
        return predictor, predictor.predict(data)

    def compute(self, rows: list) -> tuple[Any, list]:
        """One batch, one predictor: all rows in one call, else (some row is bad) each on its own."""
        predictor = self.state.ensure_loaded()
        metrics.BATCH.observe(len(rows))
        if len(rows) > 1:
            try:
                values = predictor.predict(rows)
            except BaseException:  # noqa: BLE001 - some row is bad (even sys.exit): each row gets its own answer or error
                values = None
            if isinstance(values, list) and len(values) == len(rows):
                return predictor, [[value] for value in values]
        outcomes: list = []
        for row in rows:
            try:
                outcomes.append(predictor.predict(row))
            except BaseException as exc:  # noqa: BLE001 - the Flask route answers this request's error
                outcomes.append(exc)
        return predictor, outcomes
