"""A new version whose load never ends is given up at LOAD_TIMEOUT_SECONDS: 504 naming it, the download lock
released, the previous version serving, and (under gunicorn) the worker that ran it replaced."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from online_server.app import create_app
from online_server.settings import Settings
from tests.online.conftest import gunicorn_server, zip_bytes

NAME = "hangs_model"
# load() of a version whose zip holds "hang" waits for good, as a model blocked on a socket
# with no timeout would; it wakes when the test removes that file (so no thread outlives the test).
MAIN = '''
import pathlib, time

class hangs_model:
    def load(self, model_path):
        marker = pathlib.Path(model_path) / "hang"
        while marker.exists():
            time.sleep(0.05)
        self.version = (pathlib.Path(model_path) / "version.txt").read_text()

    def predict(self, data):
        return {"version": self.version, "rows": len(data)}
'''



def _storage(root: Path) -> Path:
    (root / NAME / "src").mkdir(parents=True)
    (root / NAME / "model").mkdir()
    (root / NAME / "src" / f"{NAME}.zip").write_bytes(zip_bytes({f"{NAME}.py": MAIN}))
    (root / NAME / "model" / "20261120.zip").write_bytes(zip_bytes({"version.txt": "20261120"}))
    return root


def _publish(root: Path, version: str, hang: bool) -> None:
    files = {"version.txt": version} | ({"hang": "until the test removes it"} if hang else {})
    (root / NAME / "model" / f"{version}.zip").write_bytes(zip_bytes(files))


def _release_hung_loads(work_dir: Path) -> None:
    for marker in work_dir.glob("model/*/hang"):
        marker.unlink(missing_ok=True)


def test_a_load_that_never_ends_is_a_504_and_the_next_download_goes_ahead(tmp_path):
    storage = _storage(tmp_path / "storage")
    settings = Settings(model_name=NAME, model_type="custom", storage_root=str(storage),
                        work_dir=str(tmp_path / "work"), load_timeout_seconds=5, download_timeout_seconds=6)
    client = create_app(settings).test_client()
    assert client.post("/src_download").status_code == 200
    assert client.post("/model_download").status_code == 200
    _publish(storage, "20261121", hang=True)
    try:
        started = time.monotonic()
        answer = client.post("/model_download")
        assert time.monotonic() - started < 20
        assert answer.status_code == 504, answer.get_json()
        assert answer.get_json()["error_code"] == "LOAD_TIMEOUT"
        assert "model/20261121.zip did not end within LOAD_TIMEOUT_SECONDS=5" in answer.get_json()["message"]
        assert client.post("/result", json={"test": [1]}).get_json() == {"result": {"version": "20261120", "rows": 1}}
        # the lock went with the request: the next download does not wait for the hung one (it got a
        # 409 at DOWNLOAD_TIMEOUT_SECONDS before), and switches (5 s: a good load on a busy machine
        # took over 1 s)
        _publish(storage, "20261122", hang=False)
        answer = client.post("/model_download")
        assert answer.status_code == 200 and answer.get_json()["version"] == "20261122", answer.get_json()
        assert client.post("/result", json={"test": [1]}).get_json()["result"]["version"] == "20261122"
    finally:
        _release_hung_loads(tmp_path / "work")


def test_a_load_timeout_of_zero_is_refused_at_start():
    with pytest.raises(ValueError, match="LOAD_TIMEOUT_SECONDS=0.0: expected a number > 0"):
        Settings.from_env({"MODEL_NAME": "m", "LOAD_TIMEOUT_SECONDS": "0"})


@pytest.mark.slow
def test_under_gunicorn_the_worker_that_gave_up_a_load_is_replaced_and_the_server_serves_on(tmp_path):
    storage = _storage(tmp_path / "storage")
    env = {"MODEL_NAME": NAME, "MODEL_TYPE": "custom", "STORAGE_ROOT": str(storage),
           "WORK_DIR": str(tmp_path / "work"), "LOAD_TIMEOUT_SECONDS": "5", "DOWNLOAD_TIMEOUT_SECONDS": "6"}
    try:
        with gunicorn_server(tmp_path, env) as url:
            assert requests.post(f"{url}/src_download", timeout=60).status_code == 200
            assert requests.post(f"{url}/model_download", timeout=60).status_code == 200
            _publish(storage, "20261121", hang=True)
            answer = requests.post(f"{url}/model_download", timeout=60)
            assert answer.status_code == 504 and answer.json()["error_code"] == "LOAD_TIMEOUT", answer.text
            gave_up = answer.headers["X-Worker-Pid"]
            _publish(storage, "20261122", hang=False)
            answer = requests.post(f"{url}/model_download", timeout=60)
            assert answer.status_code == 200 and answer.json()["version"] == "20261122", answer.text
            log = tmp_path / "gunicorn.log"
            deadline = time.monotonic() + 30
            while f"worker {gave_up} stops accepting and will exit" not in log.read_text(errors="replace"):
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.1)
            answers = [requests.post(f"{url}/result", json={"test": [1]}, timeout=30) for _ in range(20)]
            assert {a.status_code for a in answers} == {200}
            assert {a.json()["result"]["version"] for a in answers} == {"20261122"}
            assert gave_up not in {a.headers["X-Worker-Pid"] for a in answers}
    finally:
        _release_hung_loads(tmp_path / "work")
