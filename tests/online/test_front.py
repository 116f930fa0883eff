"""The worker's asyncio front, in process with a small WSGI app: read whole within a deadline, then answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from online_server.framing import Limits
from online_server.front import Front, FrontSettings
from online_server.front_worker import new_event_loop

SOCKET_TIMEOUT = 10.0
BODY = b'{"test": [1.0, 2.0]}'
_loop_kind = ["uvloop"]


@pytest.fixture(autouse=True, params=["uvloop", "asyncio"])
def event_loop_kind(request):
    """Every test runs on both loops the worker can run (``EVENT_LOOP``)."""
    _loop_kind[0] = request.param
    yield request.param


class SlowApp:
    """Answers ``{"ok": path}``; ``/result`` with body ``block`` waits until ``release`` is set."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        if environ["PATH_INFO"] == "/result" and body == b"block":
            self.started.set()
            self.release.wait(SOCKET_TIMEOUT)
        if environ["PATH_INFO"] == "/interrupt":
            raise KeyboardInterrupt
        data = json.dumps({"ok": environ["PATH_INFO"], "body": body.decode()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [data]


@contextlib.contextmanager
def running(app, **settings) -> Iterator[tuple[int, Front]]:
    """A Front on a loop thread, listening on a loopback port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    loop = new_event_loop(_loop_kind[0])
    front = Front(app, FrontSettings(**({"read_timeout": 0.5, "predict_timeout": 5.0, "threads": 4} | settings)), loop)

    def run() -> None:
        asyncio.set_event_loop(loop)
        front.serve([listener])
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], front
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(SOCKET_TIMEOUT)
        front.close()
        loop.close()
        listener.close()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)


def read_all(sock: socket.socket) -> bytes:
    data = b""
    for _ in range(1000):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data


def exchange(port: int, request: bytes, shut: bool = False) -> bytes:
    sock = connect(port)
    sock.sendall(request)
    if shut:
        sock.shutdown(socket.SHUT_WR)
    return read_all(sock)


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n".encode() + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


STALLS = {
    "half a request line": b"POST /res",
    "half the headers": b"POST /result HTTP/1.1\r\nHost: t\r\nContent-Ty",
    "headers and half a body": b"POST /result HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n{\"test\"",
    "nothing": b"",
    "a chunked body stopped mid-chunk": b"POST /result HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n{\"te",
}


@pytest.mark.parametrize("stall", list(STALLS.values()), ids=list(STALLS))
def test_a_stalled_client_is_answered_408_and_others_are_served_meanwhile(stall):
    with running(SlowApp(), threads=1) as (port, front):
        opened = time.monotonic()
        stalled = [connect(port) for _ in range(20)]
        for sock in stalled:
            sock.sendall(stall)
        started = time.monotonic()
        status, body = status_and_json(exchange(port, post("/result", BODY)))
        assert status == 200 and body["ok"] == "/result"
        assert time.monotonic() - started < 0.5, "a normal request waited for the stalled ones"
        answered_after = _first_bytes_after(stalled, opened)
        for sock in stalled:
            status, body = status_and_json(read_all(sock))
            assert status == 408 and body["error_code"] == "REQUEST_TIMEOUT"
        # Deadlines are READ_TIMEOUT_SECONDS plus up to 10 % at random (spread, so that sockets
        # opened together do not reconnect together): never shorter.
        assert min(answered_after) >= front.settings.read_timeout
        assert front.held == 0


def _first_bytes_after(socks: list[socket.socket], since: float) -> list[float]:
    """Seconds from ``since`` until each socket had something to read (its answer or its close)."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    seconds = []
    while len(seconds) < len(socks):
        events = selector.select(timeout=SOCKET_TIMEOUT)
        assert events, "a stalled socket was never answered"
        for key, _ in events:
            seconds.append(time.monotonic() - since)
            selector.unregister(key.fileobj)
    selector.close()
    return seconds


@pytest.mark.parametrize("request_bytes, fragment", [
    (b"POST /result HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "Content-Length '-1'"),
    (b"POST /result HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "Content-Length 'abc'"),
    (b"POST /result HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "more than once"),
    (b"POST /result HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both"),
    (b"POST /result HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not hexadecimal"),
    (b"POST /result HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "longer than its size"),
    (b"GET / HTTP/1.1\r\n bad folding\r\n\r\n", "malformed header"),
    (b"GARBAGE\r\n\r\n", "request line"),
    (b"POST /result HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}", "must end with CRLF"),  # not a 408 at READ_TIMEOUT
])
def test_bad_framing_is_a_json_400(request_bytes, fragment):
    with running(SlowApp()) as (port, _):
        status, body = status_and_json(exchange(port, request_bytes))
    assert status == 400 and body["error_code"] == "BAD_REQUEST" and fragment in body["message"]


@pytest.mark.parametrize("cut", [
    b"POST /result HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nC800\r\n{\"test\": [1, 2, 3, 4",
    b"POST /result HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"test\"",
], ids=["chunked", "content-length"])
def test_a_body_cut_short_by_the_client_is_a_json_400(cut):
    with running(SlowApp()) as (port, _):
        status, body = status_and_json(exchange(port, cut, shut=True))
    assert status == 400 and "ended before its body" in body["message"]


def test_a_whole_chunked_body_reaches_the_app_with_a_content_length():
    chunked = b"POST /result HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nA: b\r\n\r\n"
    with running(SlowApp()) as (port, _):
        status, body = status_and_json(exchange(port, chunked))
    assert status == 200 and body["body"] == "hello world"


def test_an_oversized_body_is_a_413_before_it_is_read():
    with running(SlowApp(), limits=Limits(body=10)) as (port, _):
        status, body = status_and_json(exchange(port, b"POST /result HTTP/1.1\r\nContent-Length: 11\r\n\r\n"))
    assert status == 413 and body["error_code"] == "PAYLOAD_TOO_LARGE"


def test_healthz_and_readyz_are_answered_while_every_thread_predicts():
    app = SlowApp()
    with running(app, threads=2) as (port, _):
        busy = [connect(port) for _ in range(2)]
        for sock in busy:
            sock.sendall(post("/result", b"block"))
        assert app.started.wait(SOCKET_TIMEOUT)
        started = time.monotonic()
        health = status_and_json(exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"))
        ready = status_and_json(exchange(port, b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n"))
        assert time.monotonic() - started < 2
        app.release.set()
        assert all(status_and_json(read_all(sock))[0] == 200 for sock in busy)
    assert health == (200, {"status": "ok"}) and ready[0] == 200


def test_a_predict_past_its_deadline_is_a_504_and_the_worker_retires_after_answering_the_others():
    app = SlowApp()
    with running(app, predict_timeout=0.5, threads=4) as (port, front):
        slow = connect(port)
        slow.sendall(post("/result", b"block"))
        assert app.started.wait(SOCKET_TIMEOUT)
        other = status_and_json(exchange(port, post("/result", BODY)))
        status, body = status_and_json(read_all(slow))
        assert status == 504 and body["error_code"] == "PREDICT_TIMEOUT"
        assert other[0] == 200
        assert front.retiring and front.done  # stops accepting; the overdue thread alone is left
        app.release.set()


def test_whatever_the_app_raises_is_a_json_500():
    with running(SlowApp()) as (port, _):
        status, body = status_and_json(exchange(port, b"GET /interrupt HTTP/1.1\r\nHost: t\r\n\r\n"))
    assert status == 500 and body["error_code"] == "INTERNAL_ERROR" and "Traceback" not in body["message"]


def test_expect_100_continue_is_answered_before_the_body():
    with running(SlowApp()) as (port, _):
        sock = connect(port)
        sock.sendall(b"POST /result HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        status, body = status_and_json(read_all(sock))
    assert status == 200 and body["body"] == "hello"
