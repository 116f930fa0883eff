"""Downloads end: storage that trickles or hangs fails at DOWNLOAD_TIMEOUT_SECONDS, a stuck download
does not make every later one wait for good, and the current model keeps serving throughout."""

from __future__ import annotations

import fcntl
import socket
import threading
import time

import pytest

from online_server.app import create_app
from online_server.settings import Settings
from tests.online.conftest import MODEL, ROW


@pytest.fixture
def trickling_ftp():
    """A real socket that greets like an FTP server one byte every half second: every read is within
    any socket timeout, and the exchange never ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    def trickle(conn: socket.socket) -> None:
        with conn:
            for byte in b"220 a very slow welcome " * 100:
                if stop.wait(0.5):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def _ftp_settings(tmp_path, port: int, **overrides) -> Settings:
    return Settings(model_name=MODEL, storage="ftp", storage_root="/", work_dir=str(tmp_path / "work"),
                    ftp_host="127.0.0.1", ftp_port=port, ftp_user="u", ftp_password="p", **overrides)


def test_storage_that_trickles_fails_the_download_at_its_deadline_by_name(tmp_path, trickling_ftp):
    client = create_app(_ftp_settings(tmp_path, trickling_ftp, download_timeout_seconds=2)).test_client()
    started = time.monotonic()
    answer = client.post("/model_download")
    elapsed = time.monotonic() - started
    assert answer.status_code == 502 and answer.get_json()["error_code"] == "STORAGE_ERROR", answer.get_json()
    assert "did not end within DOWNLOAD_TIMEOUT_SECONDS=2" in answer.get_json()["message"]
    assert elapsed < 15, f"took {elapsed:.1f} s"


def test_a_transfer_that_trickles_fails_at_the_deadline_by_name(tmp_path, zips):
    """A real FTP server (pyftpdlib) that sends the zip at 128 bytes a second ends at the deadline, mid-transfer.

    pyftpdlib drops the data connection when the watchdog shuts the control one; a server that
    would not is stopped at the next data block past the deadline (``FtpStorage.fetch``)."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
    from pyftpdlib.servers import FTPServer

    from tests.online.conftest import write_tree

    root = write_tree(tmp_path / "ftp", zips, with_src=False)
    assert (root / MODEL / "model" / "20261120.zip").stat().st_size > 500  # seconds at 128 bytes a second
    authorizer = DummyAuthorizer()
    authorizer.add_user("u", "p", str(root), perm="elr")
    slow = type("Slow", (ThrottledDTPHandler,), {"write_limit": 128})
    server = FTPServer(("127.0.0.1", 0), type("Handler", (FTPHandler,), {"authorizer": authorizer, "dtp_handler": slow}))
    threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True).start()
    try:
        # 3 s: each read waits ~1 s, within the socket timeout; the whole transfer takes ~6 s
        client = create_app(_ftp_settings(tmp_path, server.address[1], download_timeout_seconds=3)).test_client()
        started = time.monotonic()
        answer = client.post("/model_download")
        elapsed = time.monotonic() - started
    finally:
        server.close_all()
    assert answer.status_code == 502, answer.get_json()
    message = answer.get_json()["message"]
    assert "download of model/20261120.zip did not end within DOWNLOAD_TIMEOUT_SECONDS=3" in message
    assert elapsed < 5.5, (message, elapsed)  # ended mid-transfer, not after it


def test_a_folder_named_like_a_model_zip_on_ftp_is_not_a_model(tmp_path, ftp_server):
    (ftp_server["root"] / MODEL / "model" / "20991231.zip").mkdir()
    settings = _ftp_settings(tmp_path, ftp_server["port"], model_type="sklearn")
    settings = Settings(**{**settings.__dict__, "ftp_user": ftp_server["user"], "ftp_password": ftp_server["password"]})
    client = create_app(settings).test_client()
    answer = client.post("/model_download")
    assert answer.status_code == 200 and answer.get_json()["version"] == "20261120", answer.get_json()


def test_a_download_stuck_elsewhere_answers_409_at_the_deadline_and_the_model_keeps_serving(tmp_path, storage_root):
    settings = Settings(model_name=MODEL, storage_root=str(storage_root), work_dir=str(tmp_path / "work"),
                        download_timeout_seconds=1)
    client = create_app(settings).test_client()
    assert client.post("/model_download").status_code == 200
    with open(tmp_path / "work" / ".download.lock", "w") as held:  # another worker's download, stuck in a load
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        answer = client.post("/model_download")
        assert time.monotonic() - started < 10
        assert answer.status_code == 409 and answer.get_json()["error_code"] == "DOWNLOAD_IN_PROGRESS"
        assert "DOWNLOAD_TIMEOUT_SECONDS=1" in answer.get_json()["message"]
        assert client.post("/result", json={"test": ROW}).status_code == 200
    assert client.post("/model_download").status_code == 200  # the lock released, downloads go on


def test_a_download_timeout_of_zero_is_refused_at_start():
    with pytest.raises(ValueError, match="DOWNLOAD_TIMEOUT_SECONDS=0.0: expected a number > 0"):
        Settings.from_env({"MODEL_NAME": "m", "DOWNLOAD_TIMEOUT_SECONDS": "0"})
