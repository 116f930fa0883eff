"""Model zips, storage trees and real servers (FTP, GCS emulator) for the online server tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = "test_model_sci"
ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]


def zip_bytes(entries: dict[str, str | bytes]) -> bytes:
    """A zip archive holding ``entries`` (name → text or bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def ridge_zip(alpha: float) -> bytes:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    features, target = load_diabetes(return_X_y=True)
    model = Ridge(alpha=alpha).fit(features, target)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{MODEL}.pkl", pickle.dumps(model))
        zipped.writestr("smoke_input.json", json.dumps(ROW))
    return buffer.getvalue()


def src_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("requirements.txt", "scikit-learn\n")
        zipped.writestr(f"{MODEL}.py", (
            "import pickle, pathlib\n"
            f"class {MODEL}:\n"
            "    def load(self, model_path):\n"
            "        self.model = pickle.loads(next(pathlib.Path(model_path).glob('*.pkl')).read_bytes())\n"
            "    def predict(self, data):\n"
            "        return [round(float(v), 3) for v in self.model.predict([data])]\n"
        ))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def zips() -> dict[str, bytes]:
    return {"20261120": ridge_zip(1.0), "20261121": ridge_zip(0.01), "src": src_zip()}


def write_tree(root: Path, zips: dict[str, bytes], versions=("20261120",), with_src: bool = True) -> Path:
    (root / MODEL / "model").mkdir(parents=True, exist_ok=True)
    (root / MODEL / "src").mkdir(parents=True, exist_ok=True)
    for version in versions:
        (root / MODEL / "model" / f"{version}.zip").write_bytes(zips[version])
    if with_src:
        (root / MODEL / "src" / f"{MODEL}.zip").write_bytes(zips["src"])
    return root


@pytest.fixture
def storage_root(tmp_path, zips) -> Path:
    return write_tree(tmp_path / "storage", zips)


@pytest.fixture
def ftp_server(tmp_path, zips):
    """A real FTP server (pyftpdlib) on loopback serving a storage tree."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    root = write_tree(tmp_path / "ftp", zips)
    authorizer = DummyAuthorizer()
    authorizer.add_user("somlier", "ftp-secret", str(root), perm="elr")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    server = FTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    yield {"host": "127.0.0.1", "port": server.address[1], "user": "somlier", "password": "ftp-secret", "root": root}
    server.close_all()


@pytest.fixture(scope="session")
def gcs_models(gcs, zips):
    """A bucket holding the storage tree under ``serving/``."""
    bucket = gcs["client"].create_bucket("models")
    for name, data in (("model/20261120.zip", zips["20261120"]), (f"src/{MODEL}.zip", zips["src"])):
        bucket.blob(f"serving/{MODEL}/{name}").upload_from_string(data)
    return {"bucket": "models"}


def server_port() -> int:
    """A free loopback port: from ``SOMLIER_TEST_PORTS`` ("first-last") when set, else one the system picks.

    The range lets a session that shares a host with other servers keep to the ports it was given.
    """
    from airflow_provider_somlier.devtools.emulator import _port_free, free_port

    ports = os.environ.get("SOMLIER_TEST_PORTS", "")
    if not ports:
        return free_port()
    first, _, last = ports.partition("-")
    for port in range(int(first), int(last or first) + 1):
        if _port_free(port):
            return port
    raise RuntimeError(f"SOMLIER_TEST_PORTS={ports!r}: no free port in it")


@contextlib.contextmanager
def gunicorn_server(tmp_path: Path, env: dict[str, str | None]) -> Iterator[str]:
    """The real server (``gunicorn -c online_server/gunicorn.conf.py``) on a free port; yields its URL.

    ``env`` is laid over this process's environment; a ``None`` value removes the variable.
    """
    import requests

    port = server_port()
    metrics = tmp_path / "metrics"
    metrics.mkdir(exist_ok=True)
    overrides = {"BIND": f"127.0.0.1:{port}", "WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics)} | env
    environ = {k: v for k, v in (os.environ | overrides).items() if v is not None}
    with open(tmp_path / "gunicorn.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "online_server" / "gunicorn.conf.py")],
            cwd=REPO, env=environ, stdout=subprocess.DEVNULL, stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(f"{url}/healthz", timeout=5)
                break
            except requests.RequestException:
                if process.poll() is not None:  # a worker that cannot boot stops the arbiter: say so now
                    log_tail = (tmp_path / "gunicorn.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"gunicorn exited with {process.returncode} before answering:\n{log_tail}")
                time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn did not answer /healthz within 30 s; see {tmp_path / 'gunicorn.log'}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
