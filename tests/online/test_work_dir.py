"""Two models on one host never serve each other's model: each has its own work dir, and the
pointer (``current.json``) names the model it is for."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
import requests

from online_server.app import create_app
from online_server.settings import Settings
from tests.online.conftest import MODEL, REPO, ROW, gunicorn_server, server_port

OTHER_ROW = [0.1, 0.2, 0.3]
WORK_ROOT = "/tmp/somlier-online"  # the documented default: WORK_DIR is <WORK_ROOT>/<MODEL_NAME>


def default_work_dir(name: str) -> str:
    return f"{WORK_ROOT}/{name}"


def three_feature_zip() -> bytes:
    """A model of another width than ``MODEL``'s 10 features: serving the wrong one shows."""
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1]], [1.0, 2.0, 3.0, 4.0])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("other.pkl", pickle.dumps(model))
    return buffer.getvalue()


@pytest.fixture
def two_models(tmp_path, zips):
    """Storage holding a 10-feature and a 3-feature model, both uniquely named: their default work
    dirs are real folders under WORK_ROOT, as a server uses them, and are deleted afterwards."""
    tag = uuid.uuid4().hex[:10]
    first, other = f"{MODEL}_{tag}", f"other_model_{tag}"
    root = tmp_path / "storage"
    for name, version, data in ((first, "20261120", zips["20261120"]), (other, "20261122", three_feature_zip())):
        (root / name / "model").mkdir(parents=True)
        (root / name / "model" / f"{version}.zip").write_bytes(data)
    yield root, first, other
    for name in (first, other):
        shutil.rmtree(default_work_dir(name), ignore_errors=True)


def test_each_model_has_its_own_default_work_dir_and_a_model_name_that_is_no_folder_is_refused():
    assert Settings(model_name="a").work_dir == f"{WORK_ROOT}/a" != Settings(model_name="b").work_dir
    assert Settings(model_name="a", work_dir="/srv/work").work_dir == "/srv/work"
    assert Settings.from_env({"MODEL_NAME": "a", "WORK_DIR": ""}).work_dir == f"{WORK_ROOT}/a"
    for name in ("", " ", ".", "..", "../a", "team/a", "a\\b", "a\0", "x" * 256):
        with pytest.raises(ValueError, match="MODEL_NAME=.*expected a name that can be one folder's"):
            Settings.from_env({"MODEL_NAME": name})


def test_two_servers_with_the_default_work_dir_serve_their_own_model(tmp_path, two_models):
    root, first, other = two_models
    common = {"STORAGE": "local", "STORAGE_ROOT": str(root), "WORK_DIR": None, "MODEL_TYPE": "sklearn"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with gunicorn_server(tmp_path / "a", common | {"MODEL_NAME": first}) as a:
        assert requests.post(f"{a}/model_download", timeout=60).json()["version"] == "20261120"
        with gunicorn_server(tmp_path / "b", common | {"MODEL_NAME": other}) as b:
            # B has downloaded nothing: it serves no model, A's least of all
            assert requests.get(f"{b}/readyz", timeout=30).status_code == 503
            assert requests.post(f"{b}/result", json={"test": OTHER_ROW}, timeout=30).status_code == 503
            assert requests.post(f"{b}/model_download", timeout=60).json()["version"] == "20261122"
            for _ in range(4):  # either worker of each server
                mine = requests.post(f"{b}/result", json={"test": OTHER_ROW}, timeout=30)
                assert (mine.status_code, mine.headers["X-Model-Version"]) == (200, "20261122"), mine.text
                theirs = requests.post(f"{a}/result", json={"test": ROW}, timeout=30)
                assert (theirs.status_code, theirs.headers["X-Model-Version"]) == (200, "20261120"), theirs.text
    for name in (first, other):
        assert json.loads((Path(default_work_dir(name)) / "current.json").read_text())["model_name"] == name


def test_a_work_dir_shared_by_two_models_serves_neither_the_other_s_model(tmp_path, two_models):
    root, first, other = two_models
    shared = tmp_path / "shared"

    def client(name):
        return create_app(Settings(model_name=name, storage_root=str(root), work_dir=str(shared))).test_client()

    a = client(first)
    assert a.post("/model_download").status_code == 200
    pointer = json.loads((shared / "current.json").read_text())
    assert pointer["model_name"] == first
    b = client(other)
    for answer in (b.get("/readyz"), b.post("/result", json={"test": ROW})):
        assert answer.status_code == 503
        message = answer.get_json()["message"]
        assert f"MODEL_NAME={first!r}" in message and f"MODEL_NAME={other!r}" in message, message
    # B's download would prune A's folders and take A's pointer: refused, A untouched
    refused = b.post("/model_download")
    assert (refused.status_code, refused.get_json()["error_code"]) == (409, "WORK_DIR_TAKEN")
    assert f"MODEL_NAME={first!r}" in refused.get_json()["message"]
    assert json.loads((shared / "current.json").read_text()) == pointer and Path(pointer["model"]).is_dir()
    assert a.post("/result", json={"test": ROW}).status_code == 200
    # The real server does not start on another model's work dir, and says whose it is
    started = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "online_server/gunicorn.conf.py"],
        env={"PATH": os.environ["PATH"], "MODEL_NAME": other, "STORAGE_ROOT": str(root), "WORK_DIR": str(shared),
             "BIND": f"127.0.0.1:{server_port()}", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert started.returncode != 0, started.stderr
    assert f"MODEL_NAME={first!r}'s, not this server's MODEL_NAME={other!r}" in started.stderr, started.stderr


def test_a_pointer_that_names_no_model_is_served_only_from_the_model_s_own_work_dir(tmp_path, two_models):
    root, first, _ = two_models

    def unnamed_pointer_in(work_dir: Path) -> None:
        """Download, then rewrite the pointer as servers before the name was recorded wrote it."""
        settings = Settings(model_name=first, storage_root=str(root), work_dir=str(work_dir))
        assert create_app(settings).test_client().post("/model_download").status_code == 200
        pointer = json.loads((work_dir / "current.json").read_text())
        del pointer["model_name"]
        (work_dir / "current.json").write_text(json.dumps(pointer))

    # In the model's default work dir its path names the model: served as before
    unnamed_pointer_in(Path(default_work_dir(first)))
    own = create_app(Settings(model_name=first, storage_root=str(root))).test_client()
    assert own.post("/result", json={"test": ROW}).status_code == 200
    # Anywhere else it may be another model's: not served, and a download replaces it
    unnamed_pointer_in(tmp_path / "explicit")
    client = create_app(Settings(model_name=first, storage_root=str(root), work_dir=str(tmp_path / "explicit")))
    client = client.test_client()
    refused = client.get("/readyz")
    assert refused.status_code == 503 and "names no model" in refused.get_json()["message"], refused.get_json()
    assert client.post("/model_download").status_code == 200
    assert client.post("/result", json={"test": ROW}).status_code == 200
    assert json.loads((tmp_path / "explicit" / "current.json").read_text())["model_name"] == first
