"""MODEL_TYPE=tf against real TensorFlow: a TF2 SavedModel, the seed's TF1 checkpoint class, a switch under load.

Runs where TensorFlow is installed (``scripts/test_tf.sh`` installs it and runs this file);
skipped elsewhere. The models are tiny linear maps whose weights the test knows, so each
answer is checked against NumPy's (within rounding: float32 in TensorFlow).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from airflow_provider_somlier.devtools.emulator import free_port
from online_server.app import create_app
from online_server.settings import Settings

tf = pytest.importorskip("tensorflow")

MODEL = "test_model_tf"
REPO = Path(__file__).resolve().parents[2]
ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]
SEED_CLASS = f'''
import tensorflow as tf


class {MODEL}:
    """The seed's shape: build a graph, restore the checkpoint, keep the session."""

    def load(self, model_path):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.x = tf.compat.v1.placeholder(tf.float32, [None, 10], name="x")
            w = tf.compat.v1.get_variable("w", [10, 1])
            b = tf.compat.v1.get_variable("b", [1])
            self.y = tf.matmul(self.x, w) + b
            saver = tf.compat.v1.train.Saver()
            self.sess = tf.compat.v1.Session(graph=self.graph)
            saver.restore(self.sess, tf.train.latest_checkpoint(model_path))
        return self.sess

    def predict(self, data):
        return self.sess.run(self.y, {{self.x: [data]}})[:, 0]
'''


def weights(scale: float) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(1, 11, dtype=np.float32).reshape(10, 1) * scale), np.array([scale], dtype=np.float32)


def expected(scale: float, row=ROW) -> float:
    w, b = weights(scale)
    return float(np.asarray(row, dtype=np.float64) @ w[:, 0].astype(np.float64) + b[0])


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder).as_posix())
        zipped.writestr("smoke_input.json", json.dumps(ROW))
    return buffer.getvalue()


def saved_model_zip(folder: Path, scale: float) -> bytes:
    """A TF2 SavedModel of x @ w + b with a serving signature, zipped."""
    w, b = weights(scale)

    class Linear(tf.Module):
        def __init__(self):
            self.w, self.b = tf.Variable(w), tf.Variable(b)

        @tf.function(input_signature=[tf.TensorSpec([None, 10], tf.float32, name="features")])
        def serve(self, features):
            return {"prediction": tf.squeeze(features @ self.w + self.b, axis=1)}

    module = Linear()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return zip_folder(folder)


def keras_zip(folder: Path, scale: float) -> bytes:
    """A Keras model file (``.keras``) of the same linear map, zipped."""
    w, b = weights(scale)
    model = tf.keras.Sequential([tf.keras.Input((10,)), tf.keras.layers.Dense(1)])
    model.layers[0].set_weights([w, b])
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    return zip_folder(folder)


def checkpoint_zip(folder: Path, scale: float) -> bytes:
    """A TF1-style checkpoint of the seed class's graph (variables ``w`` and ``b``), zipped."""
    w, b = weights(scale)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("w", initializer=w)
        tf.compat.v1.get_variable("b", initializer=b)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(folder / "model.ckpt"))
    return zip_folder(folder)


def src_zip(with_class: bool) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("requirements.txt", "tensorflow-cpu\n")
        if with_class:
            zipped.writestr(f"{MODEL}.py", SEED_CLASS)
    return buffer.getvalue()


def storage(root: Path, tmp: Path, kind: str, scales: dict[str, float]) -> Path:
    """``<root>/<MODEL>/{src,model}`` with one model zip per version (``saved``, ``keras`` or ``checkpoint``)."""
    (root / MODEL / "model").mkdir(parents=True)
    (root / MODEL / "src").mkdir(parents=True)
    (root / MODEL / "src" / f"{MODEL}.zip").write_bytes(src_zip(with_class=kind == "checkpoint"))
    build = {"saved": saved_model_zip, "keras": keras_zip, "checkpoint": checkpoint_zip}[kind]
    for version, scale in scales.items():
        (root / MODEL / "model" / f"{version}.zip").write_bytes(build(tmp / f"{kind}-{version}", scale))
    return root


def client(tmp_path: Path, root: Path):
    settings = Settings(
        model_name=MODEL, model_type="tf", storage="local", storage_root=str(root), work_dir=str(tmp_path / "work")
    )
    return create_app(settings).test_client()


@pytest.mark.parametrize("kind", ["saved", "keras", "checkpoint"])
def test_a_tf_model_is_served_through_src_download_model_download_and_result(tmp_path, kind):
    app = client(tmp_path, storage(tmp_path / "storage", tmp_path, kind, {"20261120": 1.0}))

    assert app.post("/src_download").status_code == 200
    assert app.post("/model_download").get_json() == {"state": "done", "version": "20261120"}
    answer = app.post("/result", json={"test": ROW})

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["result"] == [pytest.approx(expected(1.0), rel=1e-5)]
    assert answer.headers["X-Model-Version"] == "20261120"


def test_a_saved_model_answers_a_batch_row_by_row(tmp_path):
    app = client(tmp_path, storage(tmp_path / "storage", tmp_path, "saved", {"20261120": 1.0}))
    app.post("/src_download")
    app.post("/model_download")

    answer = app.post("/result", json={"test": [ROW, [0.0] * 10]}).get_json()["result"]

    assert answer == [pytest.approx(expected(1.0), rel=1e-5), pytest.approx(1.0)]


@pytest.mark.parametrize("kind", ["saved", "checkpoint"])
def test_an_input_of_the_wrong_shape_is_a_400_not_a_500(tmp_path, kind):
    app = client(tmp_path, storage(tmp_path / "storage", tmp_path, kind, {"20261120": 1.0}))
    app.post("/src_download")
    app.post("/model_download")

    answer = app.post("/result", json={"test": [1.0, 2.0]})

    assert answer.status_code == 400
    assert answer.get_json()["error_code"] == "BAD_INPUT"


@pytest.fixture
def tf_server(tmp_path):
    root = storage(tmp_path / "storage", tmp_path, "checkpoint", {"20261120": 1.0})
    port = free_port()
    env = os.environ | {
        "MODEL_NAME": MODEL, "MODEL_TYPE": "tf", "STORAGE": "local", "STORAGE_ROOT": str(root),
        "WORK_DIR": str(tmp_path / "work"), "BIND": f"127.0.0.1:{port}", "WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    (tmp_path / "metrics").mkdir()
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "online_server" / "gunicorn.conf.py")],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{url}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield url, root, tmp_path
    process.terminate()
    process.wait(timeout=30)


def test_switching_tf_checkpoints_under_load_answers_old_or_new_never_an_error(tf_server):
    url, root, tmp_path = tf_server
    assert requests.post(f"{url}/src_download", timeout=60).status_code == 200
    assert requests.post(f"{url}/model_download", timeout=60).json()["version"] == "20261120"
    (root / MODEL / "model" / "20261121.zip").write_bytes(checkpoint_zip(tmp_path / "checkpoint-20261121", 2.0))
    answers: list[tuple[int, str, list]] = []
    stop_at = time.monotonic() + 6

    def load() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                reply = session.post(f"{url}/result", json={"test": ROW}, timeout=60)
                body = reply.json()
                answers.append((reply.status_code, reply.headers.get("X-Model-Version", ""), body.get("result")))

    with ThreadPoolExecutor(max_workers=5) as pool:
        clients = [pool.submit(load) for _ in range(4)]
        time.sleep(1.5)
        switched = pool.submit(requests.post, f"{url}/model_download", timeout=120).result()
        for future in clients:
            future.result()

    assert switched.json()["version"] == "20261121"
    assert len(answers) > 10
    assert {status for status, _, _ in answers} == {200}, "a request failed during the switch"
    by_version = {"20261120": expected(1.0), "20261121": expected(2.0)}
    assert {version for _, version, _ in answers} == set(by_version)
    for _, version, result in answers:
        assert result == [pytest.approx(by_version[version], rel=1e-5)]
