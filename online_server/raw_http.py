"""Responses written straight to a socket, and WSGI calls turned into them.

The front (``online_server.front``) answers some requests itself -- a stalled or malformed
request, a predict past its deadline, ``/healthz`` -- and writes every other answer the
WSGI app produced. Both are whole HTTP/1.1 responses as bytes, each closing its connection:
a worker thread is held per request, never per connection, and each new connection is
accepted by whichever worker is free (as with sync workers), which keeps load even.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
import urllib.parse
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus

from online_server.framing import Head

log = logging.getLogger(__name__)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


_date_cache: list = [0, ""]


def http_date() -> str:
    """The ``Date`` header, formatted once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True)]
    return _date_cache[1]


def response(status: int, headers: list[tuple[str, str]], body: bytes, head_only: bool = False) -> bytes:
    """A whole response that closes the connection (``Content-Length`` from ``body``)."""
    lines = [f"HTTP/1.1 {status} {_reason(status)}", f"Date: {http_date()}", "Connection: close",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in HOP_BY_HOP]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


def json_error(status: int, code: str, message: str) -> bytes:
    """The server's one error shape, ``{"error_code", "message"}``, as a whole response."""
    body = json.dumps({"error_code": code, "message": message}).encode() + b"\n"
    return response(status, [("Content-Type", "application/json"), ("X-Worker-Pid", str(os.getpid()))], body)


def environ_for(head: Head, body: bytes, peer, local) -> dict:
    """The WSGI environ of a request read whole; its body, de-chunked, has a ``CONTENT_LENGTH``."""
    target = head.target
    if "://" in target.partition("?")[0]:  # absolute-form (a proxy's request): keep the path
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    path, _, query = target.partition("?")
    environ = {
        "REQUEST_METHOD": head.method, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
        "RAW_URI": head.target, "REQUEST_URI": head.target, "SERVER_PROTOCOL": head.version,
        "SERVER_NAME": str(local[0]) if isinstance(local, tuple) else "localhost",
        "SERVER_PORT": str(local[1]) if isinstance(local, tuple) else "",
        "REMOTE_ADDR": str(peer[0]) if isinstance(peer, tuple) else "",
        "REMOTE_PORT": str(peer[1]) if isinstance(peer, tuple) else "",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.input_terminated": True,
    }
    if head.has_body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in head.headers:
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name in ("content-length", "transfer-encoding") or "_" in name:
            continue  # the body is de-chunked; an underscore could pose as another header's dash
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_app(app: Callable, environ: dict) -> bytes:
    """Run the WSGI app on one request and return its whole response; whatever it raises is a JSON 500."""
    started: list = []

    def start_response(status: str, headers: list, exc_info=None):
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [int(status.split(" ", 1)[0]), headers]
        return lambda data: chunks.append(data)

    chunks: list[bytes] = []
    try:
        result = app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
    except BaseException:  # noqa: BLE001 - KeyboardInterrupt, SystemExit from any code: still a JSON answer
        log.exception("the app raised while answering %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        return json_error(500, "INTERNAL_ERROR", "the server failed to answer (see the server log)")
    return response(status, headers, b"".join(chunks), head_only=environ["REQUEST_METHOD"] == "HEAD")
