"""A model that ends its worker process with any exit code takes that worker, never the server."""

from __future__ import annotations

import runpy
import time
from types import SimpleNamespace

import pytest
import requests

from tests.online.conftest import REPO, gunicorn_server, zip_bytes

NAME = "exits_model"
MAIN = '''
import os

class exits_model:
    def load(self, model_path):
        pass

    def predict(self, data):
        if data[0] in (3, 4):  # gunicorn's own "failed to boot" / "app failed to load" codes
            os._exit(data[0])
        return data
'''



@pytest.mark.parametrize("code", [3, 4])
def test_a_model_calling_os_exit_3_or_4_costs_its_worker_not_the_server(tmp_path, code):
    root = tmp_path / "storage" / NAME
    (root / "src").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "src" / f"{NAME}.zip").write_bytes(zip_bytes({f"{NAME}.py": MAIN}))
    (root / "model" / "20261120.zip").write_bytes(zip_bytes({"weights.txt": "none"}))
    env = {"MODEL_NAME": NAME, "MODEL_TYPE": "custom", "STORAGE_ROOT": str(tmp_path / "storage"),
           "WORK_DIR": str(tmp_path / "work"), "MAX_BATCH": "1"}
    with gunicorn_server(tmp_path, env) as url:
        assert requests.post(f"{url}/src_download", timeout=60).status_code == 200
        assert requests.post(f"{url}/model_download", timeout=60).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{url}/result", json={"test": [code]}, timeout=30)
        deadline = time.monotonic() + 60
        while True:  # the other worker answers at once; the dead one is replaced
            try:
                answer = requests.post(f"{url}/result", json={"test": [1]}, timeout=10)
                if answer.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the server stopped answering after a worker exited"
            time.sleep(0.2)
        assert answer.json() == {"result": [1]}
        time.sleep(2)  # time for the arbiter to reap the worker: it must not halt
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    assert "Worker failed to boot" not in (tmp_path / "gunicorn.log").read_text(errors="replace")


def test_a_worker_that_really_fails_to_boot_still_stops_the_server(tmp_path, monkeypatch):
    """Restarting a worker that cannot boot would loop forever: the arbiter halts, as gunicorn does."""
    from gunicorn.errors import HaltServer

    monkeypatch.setenv("MODEL_NAME", "m")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    hooks = runpy.run_path(str(REPO / "online_server" / "gunicorn.conf.py"))
    server = SimpleNamespace()
    hooks["when_ready"](server)
    assert server.WORKER_BOOT_ERROR not in range(256) and server.APP_LOAD_ERROR not in range(256)
    served = SimpleNamespace(pid=101, booted=True)
    hooks["worker_exit"](server, served)
    hooks["child_exit"](server, served)  # a worker that had booted: replaced, whatever its exit code
    broken = SimpleNamespace(pid=102, booted=False)
    hooks["worker_exit"](server, broken)
    with pytest.raises(HaltServer, match="Worker failed to boot"):
        hooks["child_exit"](server, broken)
