"""The real server (gunicorn with the shipped config) with clients that misbehave the way the internet does."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
import requests

from tests.online.conftest import MODEL, ROW, gunicorn_server, write_tree

SOCKET_TIMEOUT = 30.0  # far beyond READ_TIMEOUT_SECONDS: a socket still silent then is a failure
STALLED_PER_KIND = 200
BODY = json.dumps({"test": ROW}).encode()
STALLS = {
    "half a request line": b"POST /res",
    "half the headers": b"POST /result HTTP/1.1\r\nHost: t\r\nContent-Ty",
    "headers and half a body": b"POST /result HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY[:20],
    "nothing": b"",
    "a chunked body stopped mid-chunk": b"POST /result HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(BODY) + BODY[:20],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, zips):
    """One server for the module: every test leaves it as it found it (each closes its sockets)."""
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    storage_root = write_tree(tmp_path / "storage", zips)
    env = {"MODEL_NAME": MODEL, "STORAGE": "local", "STORAGE_ROOT": str(storage_root), "WORK_DIR": str(tmp_path / "work"),
           "READ_TIMEOUT_SECONDS": "10", "WORKER_CLASS": None}
    with gunicorn_server(tmp_path, env) as url:
        assert requests.post(f"{url}/model_download", timeout=60).status_code == 200
        yield url


def _address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname, parsed.port


def _unanswered(sock: socket.socket) -> bool:
    """Nothing has arrived on ``sock`` yet, and the server has not closed it (looked at without waiting)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(SOCKET_TIMEOUT)
    return False


def _answer(sock: socket.socket) -> bytes:
    data = b""
    try:
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return data


def test_hundreds_of_stalled_sockets_of_every_kind_keep_no_client_out(server):
    address = _address(server)
    stalled = []
    for data in STALLS.values():
        for _ in range(STALLED_PER_KIND):
            sock = socket.create_connection(address, timeout=SOCKET_TIMEOUT)
            if data:
                sock.sendall(data)
            stalled.append(sock)

    def normal(index: int) -> int:
        if index % 4 == 0:
            return requests.get(f"{server}/healthz", timeout=SOCKET_TIMEOUT).status_code
        return requests.post(f"{server}/result", json={"test": ROW}, timeout=SOCKET_TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(normal, range(64)))
    assert statuses == [200] * 64
    # Every normal client was served while every stalled socket was still open and unanswered:
    # none of them waited for the stalled ones to be cut off (READ_TIMEOUT_SECONDS=10).
    assert all(_unanswered(sock) for sock in stalled), "normal requests waited for the read deadline"
    answers = [_answer(sock) for sock in stalled]
    cut_off = [a for a in answers if a.startswith(b"HTTP/1.1 408 ")]
    closed = [a for a in answers if a == b""]
    assert len(cut_off) + len(closed) == len(stalled)
    assert len(cut_off) >= len(stalled) - STALLED_PER_KIND  # all but the silent ones (which may get one too)
    assert all(b'"error_code": "REQUEST_TIMEOUT"' in a for a in cut_off)


@pytest.mark.parametrize("head", [
    b"Content-Length: -1\r\n", b"Content-Length: abc\r\n", b"Content-Length: 5\r\nContent-Length: 6\r\n",
], ids=["negative", "not-a-number", "twice"])
def test_a_bad_content_length_is_a_json_400(server, head):
    sock = socket.create_connection(_address(server), timeout=SOCKET_TIMEOUT)
    sock.sendall(b"POST /result HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" + head + b"\r\n")
    answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error_code"] == "BAD_REQUEST"


def test_a_chunked_body_cut_short_is_a_json_400(server):
    sock = socket.create_connection(_address(server), timeout=SOCKET_TIMEOUT)
    sock.sendall(b"POST /result HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\nC800\r\n" + BODY[:20])
    sock.shutdown(socket.SHUT_WR)
    answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error_code"] == "BAD_REQUEST"


SLOW_HELPER = '''
import os, time

def answer(data):
    if data == "slow":
        time.sleep(60)
    return [os.getpid()]
'''


@pytest.fixture
def slow_model_server(tmp_path):
    from tests.online.test_custom_model import NAME, src_zip

    root = tmp_path / "storage" / NAME
    (root / "src").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "src" / f"{NAME}.zip").write_bytes(src_zip(SLOW_HELPER))
    (root / "model" / "20261120.zip").write_bytes(src_zip("", ""))
    env = {"MODEL_NAME": NAME, "MODEL_TYPE": "custom", "STORAGE_ROOT": str(tmp_path / "storage"),
           "WORK_DIR": str(tmp_path / "work"), "PREDICT_TIMEOUT_SECONDS": "2", "WORKER_CLASS": None}
    with gunicorn_server(tmp_path, env) as url:
        assert requests.post(f"{url}/src_download", timeout=60).status_code == 200
        assert requests.post(f"{url}/model_download", timeout=60).status_code == 200
        yield url


def test_a_predict_past_its_deadline_is_a_504_and_no_other_request_is_dropped(slow_model_server):
    url = slow_model_server
    with ThreadPoolExecutor(max_workers=12) as pool:
        slow = [pool.submit(requests.post, f"{url}/result", json={"test": "slow"}, timeout=SOCKET_TIMEOUT)
                for _ in range(2)]  # likely one in each worker
        time.sleep(0.5)
        started = time.monotonic()
        health = requests.get(f"{url}/healthz", timeout=SOCKET_TIMEOUT)
        assert health.status_code == 200 and time.monotonic() - started < 1, "/healthz waited behind a predict"
        others = [pool.submit(requests.post, f"{url}/result", json={"test": 1}, timeout=SOCKET_TIMEOUT)
                  for _ in range(40)]
        assert {f.result().status_code for f in others} == {200}
        for future in slow:
            answer = future.result()
            assert answer.status_code == 504 and answer.json()["error_code"] == "PREDICT_TIMEOUT"
    before = {int(p) for f in slow for p in [f.result().headers["X-Worker-Pid"]]}
    # The worker that held the stuck predict retires and gunicorn starts another; the server answers throughout.
    deadline = time.monotonic() + 60
    pids: set[int] = set()
    while time.monotonic() < deadline and not (pids - before):
        reply = requests.post(f"{url}/result", json={"test": 1}, timeout=SOCKET_TIMEOUT)
        assert reply.status_code == 200
        pids.add(reply.json()["result"][0])
        time.sleep(0.05)
    assert pids - before, "no fresh worker replaced the one with the stuck predict"
