"""The real server (gunicorn, 2 gathering workers) switches models under concurrent load without an error."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.online.conftest import MODEL, ROW, gunicorn_server


@pytest.fixture
def server(request, tmp_path, storage_root):
    env = {"MODEL_NAME": MODEL, "STORAGE": "local", "STORAGE_ROOT": str(storage_root), "WORK_DIR": str(tmp_path / "work")}
    worker_class = getattr(request, "param", None)
    if worker_class:
        env |= {"WORKER_CLASS": worker_class, "THREADS": "4"}
    with gunicorn_server(tmp_path, env) as url:
        yield url


@pytest.mark.parametrize("server", [None, "gthread"], indirect=True, ids=["gathering", "gthread"])
def test_concurrent_requests_during_a_switch_see_old_or_new_never_an_error(server, storage_root, zips):
    assert requests.post(f"{server}/model_download", timeout=30).json()["version"] == "20261120"
    (storage_root / MODEL / "model" / "20261121.zip").write_bytes(zips["20261121"])
    answers: list[tuple[float, int, str, str]] = []  # (sent, status, version, worker pid)
    results: list[tuple[str, float]] = []  # (version header, the answer's value)
    stop_at = time.monotonic() + 4

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                sent = time.monotonic()
                reply = session.post(f"{server}/result", json={"test": ROW}, timeout=30)
                answers.append((sent, reply.status_code, reply.headers.get("X-Model-Version", ""),
                                reply.headers.get("X-Worker-Pid", "")))
                if reply.status_code == 200:
                    results.append((reply.headers["X-Model-Version"], reply.json()["result"][0]))

    with ThreadPoolExecutor(max_workers=9) as pool:
        clients = [pool.submit(client) for _ in range(8)]
        time.sleep(1.5)
        switched = pool.submit(requests.post, f"{server}/model_download", timeout=30).result()
        switched_at = time.monotonic()
        for future in clients:
            future.result()

    assert switched.json()["version"] == "20261121"
    assert len(answers) > 50
    assert {status for _, status, _, _ in answers} == {200}, "a request failed during the switch"
    assert {version for _, _, version, _ in answers} == {"20261120", "20261121"}
    # A request sent after the switch answered is served by a worker that has seen the new
    # pointer, whichever worker it lands on: no worker serves the old model after that.
    late = [(version, pid) for sent, _, version, pid in answers if sent > switched_at]
    assert late and {version for version, _ in late} == {"20261121"}, late
    # Batched or not, each answer is the one its header's version computes for the row.
    expected = {version: _predict(zips[version]) for version in ("20261120", "20261121")}
    assert all(value == pytest.approx(expected[version], rel=1e-9) for version, value in results)
    # Both workers, asked after the switch answered (until each has answered: on a loaded machine
    # one worker may take every request of a few seconds), serve the new version alone.
    assert _answers_of_both_workers(server) == {"20261121"}

    metrics = requests.get(f"{server}/metrics", timeout=10).text
    assert 'somlier_requests_total{endpoint="result",status="200"}' in metrics


def _answers_of_both_workers(url: str, within: float = 60) -> set[str]:
    """The versions answered by concurrent requests sent until both workers have answered."""
    versions: set[str] = set()
    pids: set[str] = set()
    deadline = time.monotonic() + within
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(pids) < 2:
            assert time.monotonic() < deadline, f"only worker(s) {pids} answered within {within:.0f} s"
            replies = list(pool.map(lambda _: requests.post(f"{url}/result", json={"test": ROW}, timeout=30), range(16)))
            assert {reply.status_code for reply in replies} == {200}
            versions |= {reply.headers["X-Model-Version"] for reply in replies}
            pids |= {reply.headers["X-Worker-Pid"] for reply in replies}
    return versions


def _predict(archive: bytes) -> float:
    import io
    import pickle
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        model = pickle.loads(zipped.read(f"{MODEL}.pkl"))
    return float(model.predict([ROW])[0])


def _serving_versions(url: str) -> set[str]:
    """The versions the version gauge shows as serving (value 1) across the live workers."""
    lines = requests.get(f"{url}/metrics", timeout=10).text.splitlines()
    return {line.split('version="')[1].split('"')[0] for line in lines
            if line.startswith("somlier_model_version_info{") and line.endswith(" 1.0")}


def test_the_version_gauge_follows_every_worker_including_respawned_ones(server, storage_root, zips):
    import os
    import signal

    requests.post(f"{server}/model_download", timeout=30)
    (storage_root / MODEL / "model" / "20261121.zip").write_bytes(zips["20261121"])
    assert requests.post(f"{server}/model_download", timeout=30).json()["version"] == "20261121"
    pids = {requests.post(f"{server}/result", json={"test": ROW}, timeout=30).headers["X-Worker-Pid"] for _ in range(40)}
    for pid in pids:  # gunicorn starts new workers; they load the current model before serving
        os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 60
    seen: set[str] = set()
    while time.monotonic() < deadline and len(seen - pids) < 2:
        try:
            seen.add(requests.get(f"{server}/healthz", timeout=30).headers["X-Worker-Pid"])
        except requests.RequestException:
            time.sleep(0.1)
    assert len(seen - pids) >= 1, "gunicorn did not start a new worker"
    # Every live worker -- respawned, or idle since the switch -- shows the new version alone.
    assert _eventually_serving(server) == {"20261121"}


def _eventually_serving(url: str, within: float = 30) -> set[str]:
    """The gauge's serving versions once they settle on one, or as they are after ``within`` s."""
    deadline = time.monotonic() + within
    versions = _serving_versions(url)
    while len(versions) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        versions = _serving_versions(url)
    return versions


def test_a_worker_that_gets_no_request_follows_a_switch_on_its_own(server, storage_root, zips):
    """One switch answered by one worker; the other, never asked anything, shows the new version too."""
    requests.post(f"{server}/model_download", timeout=30)
    # both workers answer once (the other one as soon as its follower loaded): both serve 20261120
    assert _answers_of_both_workers(server) == {"20261120"} and _serving_versions(server) == {"20261120"}
    (storage_root / MODEL / "model" / "20261121.zip").write_bytes(zips["20261121"])
    assert requests.post(f"{server}/model_download", timeout=30).json()["version"] == "20261121"
    assert _eventually_serving(server) == {"20261121"}


GATED_SOURCE = """import json, os, pathlib, pickle, time


class {model}:
    def load(self, model_path):
        # A version loaded once the pointer already names it -- by a worker that lags the switch
        # another worker made -- waits while the gate file exists.
        gate, pointer = pathlib.Path(os.environ["GATE_FILE"]), pathlib.Path(os.environ["WORK_DIR"]) / "current.json"
        while gate.exists() and pointer.exists() and (
                pathlib.Path(json.loads(pointer.read_text())["model"]).resolve() == pathlib.Path(model_path).resolve()):
            time.sleep(0.05)
        self.model = pickle.loads(next(pathlib.Path(model_path).glob("*.pkl")).read_bytes())

    def predict(self, data):
        return [float(v) for v in self.model.predict([data])]
"""


def test_a_worker_behind_a_switch_takes_no_request_until_it_has_loaded_the_new_version(tmp_path, storage_root, zips):
    """Requests after a switch go to the worker that switched while the other loads, never wait for that load.

    The other worker's follower checks every 60 s here, and its load of the new version is
    held for as long as the test likes: a request it took would wait for that load (measured
    with a first load: ~2.4 s for every request the worker had accepted).
    """
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{MODEL}.py", GATED_SOURCE.format(model=MODEL))
    (storage_root / MODEL / "src" / f"{MODEL}.zip").write_bytes(buffer.getvalue())
    gate = tmp_path / "gate"
    env = {"MODEL_NAME": MODEL, "MODEL_TYPE": "custom", "STORAGE": "local", "STORAGE_ROOT": str(storage_root),
           "WORK_DIR": str(tmp_path / "work"), "FOLLOW_POINTER_SECONDS": "60", "GATE_FILE": str(gate)}
    with gunicorn_server(tmp_path, env) as url:
        try:
            assert requests.post(f"{url}/src_download", timeout=30).status_code == 200
            assert requests.post(f"{url}/model_download", timeout=30).json()["version"] == "20261120"
            assert _answers_of_both_workers(url) == {"20261120"}

            gate.touch()
            (storage_root / MODEL / "model" / "20261121.zip").write_bytes(zips["20261121"])
            switched = requests.post(f"{url}/model_download", timeout=30)
            assert switched.json()["version"] == "20261121"
            with ThreadPoolExecutor(max_workers=4) as pool:
                replies = list(pool.map(
                    lambda _: requests.post(f"{url}/result", json={"test": ROW}, timeout=15), range(40)))
            assert {reply.status_code for reply in replies} == {200}
            assert {reply.headers["X-Model-Version"] for reply in replies} == {"20261121"}
            assert {reply.headers["X-Worker-Pid"] for reply in replies} == {switched.headers["X-Worker-Pid"]}
        finally:
            gate.unlink(missing_ok=True)
        assert _answers_of_both_workers(url) == {"20261121"}  # the other worker loaded it and takes requests again
