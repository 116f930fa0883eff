"""Each worker's OpenMP and BLAS pools hold its share of the cores, not every core."""

from __future__ import annotations

import os

import requests

from online_server.native_threads import VARIABLES, available_cores, threads_per_worker
from tests.online.conftest import gunicorn_server, zip_bytes

REPORTER = '''
class threads_model:
    """Reports the native pools of the thread that predicts."""
    def load(self, model_path):
        import sklearn.ensemble  # loads scikit-learn's OpenMP runtime, as a gradient-boosted model does

    def predict(self, data):
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
        from threadpoolctl import threadpool_info
        return {"openmp": _openmp_effective_n_threads(), "pools": sorted({p["num_threads"] for p in threadpool_info()})}
'''


def test_a_worker_gets_the_cores_divided_by_the_workers_at_least_one():
    assert threads_per_worker(2, cores=8) == 4
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(4, cores=2) == 1


def test_a_configured_thread_count_wins():
    assert threads_per_worker(2, configured=3, cores=8) == 3


def test_a_cgroup_cpu_quota_caps_the_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cores(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cores(tmp_path) == len(os.sched_getaffinity(0))



def test_each_gunicorn_worker_predicts_with_its_share_of_the_cores(tmp_path):
    root = tmp_path / "storage" / "threads_model"
    (root / "src").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "src" / "threads_model.zip").write_bytes(zip_bytes({"threads_model.py": REPORTER}))
    (root / "model" / "20261120.zip").write_bytes(zip_bytes({"empty.txt": ""}))
    env = {"MODEL_NAME": "threads_model", "MODEL_TYPE": "custom", "STORAGE_ROOT": str(tmp_path / "storage"),
           "WORK_DIR": str(tmp_path / "work")} | {name: None for name in VARIABLES}  # nothing inherited
    expected = max(1, available_cores() // 2)
    with gunicorn_server(tmp_path, env) as url:
        assert requests.post(f"{url}/src_download", timeout=30).status_code == 200
        assert requests.post(f"{url}/model_download", timeout=30).status_code == 200
        answers = [requests.post(f"{url}/result", json={"test": [0]}, timeout=30) for _ in range(6)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.headers["X-Worker-Pid"] for a in answers}) >= 1
    assert all(a.json()["result"] == {"openmp": expected, "pools": [expected]} for a in answers), [a.json() for a in answers]
