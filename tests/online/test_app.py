"""The k8s_flask contract and what a real model server must also do, through Flask's test client."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile

import pytest
from sklearn.linear_model import Ridge

from online_server.app import create_app
from online_server.settings import Settings
from tests.online.conftest import MODEL, ROW


def make_client(tmp_path, storage_root, **overrides):
    settings = Settings(
        model_name=MODEL, storage="local", storage_root=str(storage_root), work_dir=str(tmp_path / "work"), **overrides
    )
    return create_app(settings).test_client()


def test_the_seed_contract_download_load_predict(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root)
    assert client.post("/src_download").get_json() == {"state": "done", "version": None}
    assert client.post("/model_download").get_json() == {"state": "done", "version": "20261120"}
    assert client.post("/").get_json() == {"state": "done"}
    answer = client.post("/result", json={"test": ROW})
    assert answer.status_code == 200
    assert len(answer.get_json()["result"]) == 1
    assert answer.headers["X-Model-Version"] == "20261120"


def test_the_newest_model_zip_by_date_wins_and_same_names_are_overwritten(tmp_path, storage_root, zips):
    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    before = client.post("/result", json={"test": ROW}).get_json()["result"]
    (storage_root / MODEL / "model" / "20261121.zip").write_bytes(zips["20261121"])
    (storage_root / MODEL / "model" / "notes.zip").write_bytes(b"ignored")
    assert client.post("/model_download").get_json()["version"] == "20261121"
    after = client.post("/result", json={"test": ROW})
    assert after.headers["X-Model-Version"] == "20261121" and after.get_json()["result"] != before


def test_a_custom_model_needs_its_sources_first(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root, model_type="custom")
    answer = client.post("/model_download")
    assert answer.status_code == 409 and answer.get_json()["error_code"] == "SOURCES_MISSING"
    client.post("/src_download")
    assert client.post("/model_download").status_code == 200
    assert isinstance(client.post("/result", json={"test": ROW}).get_json()["result"][0], float)


def test_a_worker_started_after_a_download_loads_the_model_before_its_first_request(tmp_path, storage_root):
    import shutil

    assert make_client(tmp_path, storage_root).post("/model_download").status_code == 200
    restarted = make_client(tmp_path, storage_root)
    shutil.rmtree(tmp_path / "work" / "model")  # nothing left to load lazily
    answer = restarted.post("/result", json={"test": ROW})
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "20261120"


def test_predicting_before_any_download_is_a_503_not_a_crash(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root)
    answer = client.post("/result", json={"test": ROW})
    assert answer.status_code == 503 and "call /src_download" in answer.get_json()["message"]
    assert client.get("/readyz").status_code == 503 and client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "body, content_type, status, code, fragment",
    [
        (b"not json", "application/json", 400, "BAD_REQUEST", "JSON object"),
        (b'{"input": [1]}', "application/json", 400, "BAD_REQUEST", "missing key 'test'"),
        (b'{"test": [1, 2]}', "application/json", 400, "BAD_INPUT", "10"),
        (b'{"test": ["a", "b"]}', "application/json", 400, "BAD_INPUT", "must be numbers"),
        (b'{"test": []}', "application/json", 400, "BAD_INPUT", "non-empty"),
        (b'[1, 2]', "application/json", 400, "BAD_REQUEST", "JSON object"),
        (b'{"test": [0, 0, 0, 0, 0, 0, 0, 0, 0, NaN]}', "application/json", 400, "BAD_REQUEST", "NaN is not a JSON number"),
        (b'{"test": [0, 0, 0, 0, 0, 0, 0, 0, 0, -Infinity]}', "application/json", 400, "BAD_REQUEST", "not a JSON number"),
        (b'{"test": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1e400]}', "application/json", 400, "BAD_REQUEST", "range of a double"),
        (b'{"test": [0, 0, 0, 0, 0, 0, 0, 0, 0, ' + b"9" * 400 + b"]}", "application/json", 400, "BAD_REQUEST",
         "range of a double"),
        (b'{"test": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400, "BAD_REQUEST", "nested too deeply"),
        (b'{"test": ["0.03", 0, 0, 0, 0, 0, 0, 0, 0, 0]}', "application/json", 400, "BAD_INPUT", "must be numbers"),
        (b'{"test": [true, 0, 0, 0, 0, 0, 0, 0, 0, 0]}', "application/json", 400, "BAD_INPUT", "must be numbers"),
        (b'{"test": [null, 0, 0, 0, 0, 0, 0, 0, 0, 0]}', "application/json", 400, "BAD_INPUT", "must be numbers"),
        (b'{"test": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}', "text/plain", 400, "BAD_REQUEST", "JSON object"),
        (b'{"test": [' + b"0.1," * 300_000 + b'0]}', "application/json", 413, "PAYLOAD_TOO_LARGE", ""),
    ],
)
def test_bad_bodies_get_a_json_error_never_a_traceback(tmp_path, storage_root, body, content_type, status, code, fragment):
    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    answer = client.post("/result", data=body, content_type=content_type)
    assert answer.status_code == status
    assert answer.get_json()["error_code"] == code
    assert fragment in answer.get_json()["message"]
    assert "Traceback" not in answer.get_data(as_text=True)


def fitted_ridge():
    from sklearn.datasets import load_diabetes

    return Ridge().fit(*load_diabetes(return_X_y=True))


def _corrupt_deflate() -> bytes:
    """A zip whose deflate stream is garbage (headers intact)."""
    data = bytearray(_zip({"model.pkl": bytes(range(256)) * 40}))
    name_length, extra_length = struct.unpack("<HH", data[26:30])
    start = 30 + name_length + extra_length
    data[start:start + 64] = b"\xff" * 64
    return bytes(data)


def _patched_central(archive: bytes, **fields: int) -> bytes:
    """Set the general-purpose flags or the compression method of the first entry, in both headers."""
    data = bytearray(archive)
    central = data.index(b"PK\x01\x02")
    for name, value in fields.items():
        local_offset, central_offset = {"flag_bits": (6, 8), "method": (8, 10)}[name]
        struct.pack_into("<H", data, local_offset, value)
        struct.pack_into("<H", data, central + central_offset, value)
    return bytes(data)


def _duplicated(archive: bytes) -> bytes:
    """The archive with its second entry renamed to its first's (same length): two entries of one name."""
    return archive.replace(b"modeX.pkl", b"model.pkl")


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zipped.writestr(info, "/etc/passwd")
    return buffer.getvalue()


BAD_ARCHIVES = [
    (_zip({"../evil.pkl": b"x"}), "escapes"),
    (_zip({"/abs/evil.pkl": b"x"}), "escapes"),
    (_zip({"ok.pkl": b"x"}, symlink="link.pkl"), "symbolic link"),
    (b"this is not a zip", "not a zip"),
    (_zip({"big.pkl": b"0" * 50_000}), "unpacks to"),
    (b"0" * 5000, "over the 4000-byte limit"),
    (_zip({"model.pkl": b"not a pickle"}), "cannot unpickle"),
    (_zip({"model.pkl": pickle.dumps({"coef": [1.0]})}), "not a model: it has no predict()"),
    (_zip({"model.pkl": pickle.dumps(Ridge())}), "add smoke_input.json"),
    (_zip({"model.pkl": pickle.dumps(fitted_ridge()), "smoke_input.json": b"[1, 2]"}), "the smoke test failed"),
    (_corrupt_deflate(), "cannot be unpacked"),
    (_patched_central(_zip({"model.pkl": b"x" * 100}), flag_bits=0x1), "encrypted"),
    (_patched_central(_zip({"model.pkl": b"x" * 100}), method=99), "compression method 99"),
    (_zip({"a": b"x", "a/b": b"y"}), "both a file and a folder"),
    (_duplicated(_zip({"model.pkl": b"x" * 10, "modeX.pkl": b"y" * 10})), "'model.pkl' is in the archive twice"),
    (_zip({"x" * 300 + ".pkl": b"x"}), "over 255 bytes"),
    (_zip({"model.pkl": b"x"})[:-30], "not a zip"),
]


@pytest.mark.parametrize(
    "archive, fragment", BAD_ARCHIVES,
    # ids without the bytes: a zip made at collection holds the time, and every pytest-xdist
    # worker must collect the same ids
    ids=[f"{n}-{fragment}" for n, (_, fragment) in enumerate(BAD_ARCHIVES)],
)
def test_a_bad_model_zip_is_refused_and_the_old_model_keeps_serving(tmp_path, storage_root, archive, fragment):
    client = make_client(tmp_path, storage_root, max_archive_bytes=4000 if "4000" in fragment or "unpacks" in fragment else 1 << 30)
    if "unpacks" not in fragment and "4000" not in fragment:
        assert client.post("/model_download").status_code == 200
    (storage_root / MODEL / "model" / "20261130.zip").write_bytes(archive)
    answer = client.post("/model_download")
    assert answer.status_code == 422, answer.get_json()
    assert fragment in answer.get_json()["message"]
    assert not (tmp_path / "evil.pkl").exists() and not (tmp_path / "work" / "evil.pkl").exists()
    serving = [] if "unpacks" in fragment or "4000" in fragment else [json.loads((tmp_path / "work" / "current.json").read_text())["model"]]
    unpacked = tmp_path / "work" / "model"
    assert ([str(p) for p in unpacked.iterdir()] if unpacked.exists() else []) == serving  # the refused unpack is gone
    if "unpacks" not in fragment and "4000" not in fragment:
        still = client.post("/result", json={"test": ROW})
        assert still.status_code == 200 and still.headers["X-Model-Version"] == "20261120"


def test_a_switch_keeps_only_the_current_and_the_previous_unpacked_model(tmp_path, storage_root, zips):
    client = make_client(tmp_path, storage_root)
    folders = []
    for day in ("20261121", "20261122", "20261123"):
        (storage_root / MODEL / "model" / f"{day}.zip").write_bytes(zips["20261121"])
        assert client.post("/model_download").get_json()["version"] == day
        folders.append(json.loads((tmp_path / "work" / "current.json").read_text())["model"])
    assert sorted(str(p) for p in (tmp_path / "work" / "model").iterdir()) == sorted(folders[-2:])
    assert client.post("/result", json={"test": ROW}).headers["X-Model-Version"] == "20261123"


def test_only_real_ascii_dates_name_a_model_version(tmp_path, storage_root, zips):
    for name in ("20279999.zip", "\u0662\u0660\u0663\u0660\u0660\u0661\u0660\u0661.zip", "20261301.zip", "2026112.zip"):
        (storage_root / MODEL / "model" / name).write_bytes(zips["20261121"])
    client = make_client(tmp_path, storage_root)
    assert client.post("/model_download").get_json()["version"] == "20261120"
    assert client.post("/result", json={"test": ROW}).headers["X-Model-Version"] == "20261120"


def test_an_oversized_chunked_body_is_a_413(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root, max_body_bytes=1000)
    client.post("/model_download")
    answer = client.post("/result", input_stream=io.BytesIO(b'{"test": [' + b"0.1," * 1000 + b"0]}"),
                         headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
                         environ_overrides={"wsgi.input_terminated": True})
    assert answer.status_code == 413 and answer.get_json()["error_code"] == "PAYLOAD_TOO_LARGE"


def test_the_version_header_names_the_model_that_computed_the_answer_when_a_switch_lands_meanwhile(
    tmp_path, storage_root, zips
):
    """A switch installed while a request is predicting must not relabel that request's answer."""
    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    state = client.application.wsgi_app.state
    old = state.predictor
    old_answer = old.predict(ROW)
    (storage_root / MODEL / "model" / "20261121.zip").write_bytes(zips["20261121"])
    real_predict = old.predict
    switched = []

    def predict_while_switching(data):
        answer = real_predict(data)
        if not switched:
            switched.append(make_client(tmp_path, storage_root).post("/model_download").get_json()["version"])
            state.ensure_loaded()  # this worker sees the new pointer before the answer is written
        return answer

    old.predict = predict_while_switching
    answer = client.post("/result", json={"test": ROW})
    assert switched == ["20261121"] and state.predictor.version == "20261121"
    assert answer.headers["X-Model-Version"] == "20261120" and answer.get_json()["result"] == pytest.approx(old_answer, rel=1e-12)


def test_downloads_require_the_token_when_one_is_set(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root, download_token="s3cret")
    assert client.post("/model_download").status_code == 401
    assert client.post("/model_download", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/model_download", headers={"Authorization": "s3cret"}).status_code == 401
    assert client.post("/model_download", headers={"Authorization": "Basic s3cret"}).status_code == 401
    assert client.post("/model_download", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_metrics_count_requests_errors_and_the_version(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    client.post("/result", json={"test": ROW})
    client.post("/result", data=b"x", content_type="application/json")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'somlier_requests_total{endpoint="result",status="200"}' in text
    assert 'somlier_errors_total{endpoint="result"}' in text
    assert 'somlier_model_version_info{version="20261120"} 1.0' in text


def test_each_request_is_counted_and_logged_once_whichever_path_answers(tmp_path, storage_root, caplog):
    """Good predictions are answered by the hot path, everything else by the Flask routes."""
    from prometheus_client import REGISTRY

    def count(status: str) -> float:
        return REGISTRY.get_sample_value("somlier_requests_total", {"endpoint": "result", "status": status}) or 0.0

    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    before = count("200"), count("400")
    caplog.set_level("INFO", logger="somlier.online.access")
    caplog.clear()
    good = [client.post("/result", json={"test": ROW}) for _ in range(3)]
    bad = client.post("/result", json={"test": [1, 2]})
    assert [r.status_code for r in good] == [200] * 3 and bad.status_code == 400
    assert all(r.headers["X-Model-Version"] == "20261120" and r.headers["X-Worker-Pid"] for r in good + [bad])
    assert (count("200") - before[0], count("400") - before[1]) == (3, 1)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "somlier.online.access"]
    assert [line["status"] for line in lines if line["path"] == "/result"] == [200] * 3 + [400]


def test_the_hot_path_answers_as_the_flask_route_does(tmp_path, storage_root):
    """The same body, bytes and error shape as Flask's jsonify, whichever path answered."""
    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    one = client.post("/result", json={"test": ROW})
    many = client.post("/result", json={"test": [ROW, ROW]})
    objects = client.post("/result", json={"test": {str(i): v for i, v in enumerate(ROW)}})
    assert one.content_type == "application/json" and one.get_data().endswith(b"\n")
    # One row and two rows may take different BLAS kernels: equal within rounding, not bit for bit.
    assert many.get_json()["result"] == pytest.approx(one.get_json()["result"] * 2, rel=1e-12)
    assert objects.status_code == 400 and "fitted without feature names" in objects.get_json()["message"]


def test_ftp_storage_serves_the_same_contract(tmp_path, ftp_server):
    settings = Settings(
        model_name=MODEL, storage="ftp", storage_root="/", work_dir=str(tmp_path / "work"),
        ftp_host=ftp_server["host"], ftp_port=ftp_server["port"], ftp_user=ftp_server["user"],
        ftp_password=ftp_server["password"], model_type="custom",
    )
    client = create_app(settings).test_client()
    assert client.post("/src_download").status_code == 200
    assert client.post("/model_download").get_json()["version"] == "20261120"
    assert client.post("/result", json={"test": ROW}).status_code == 200


def test_gcs_storage_serves_the_same_contract(tmp_path, gcs_models):
    settings = Settings(
        model_name=MODEL, storage="gcs", storage_root="serving", gcs_bucket=gcs_models["bucket"],
        work_dir=str(tmp_path / "work"),
    )
    client = create_app(settings).test_client()
    assert client.post("/model_download").get_json()["version"] == "20261120"
    assert client.post("/result", json={"test": [ROW, ROW]}).status_code == 200



def test_the_worker_that_switched_serves_the_new_model_without_loading_it_again(tmp_path, storage_root, monkeypatch):
    from online_server import state as serving_state

    client = make_client(tmp_path, storage_root)
    assert client.post("/model_download").status_code == 200
    reloads = []
    monkeypatch.setattr(serving_state, "load_predictor", lambda *a: reloads.append(a))
    assert client.post("/result", json={"test": ROW}).status_code == 200
    assert reloads == []


def test_a_version_outside_ascii_is_percent_encoded_in_the_header():
    from online_server.access import response_headers

    headers = dict(response_headers("모델/2"))
    assert headers["X-Model-Version"] == "%EB%AA%A8%EB%8D%B8/2" and headers["X-Model-Version"].isascii()


def test_a_duplicate_key_is_a_400_naming_it(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    for body in (b'{"test": [1.0], "test": [2.0]}', b'{"test": {"bmi": 1.0, "bmi": 2.0}}'):
        answer = client.post("/result", data=body, content_type="application/json")
        assert answer.status_code == 400 and answer.get_json()["error_code"] == "BAD_REQUEST"
        assert "appears more than once" in answer.get_json()["message"]
    assert "'bmi'" in answer.get_json()["message"]


class InterruptingEstimator:
    """An estimator whose predict raises what ``except Exception`` does not catch."""

    n_features_in_ = 10

    def predict(self, rows):
        raise KeyboardInterrupt


def test_a_base_exception_from_an_estimator_is_a_json_500(tmp_path):
    (tmp_path / "storage" / MODEL / "model").mkdir(parents=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{MODEL}.pkl", pickle.dumps(InterruptingEstimator()))
    (tmp_path / "storage" / MODEL / "model" / "20261120.zip").write_bytes(buffer.getvalue())
    client = make_client(tmp_path, tmp_path / "storage")
    from online_server.models.sklearn import SklearnPredictor

    state = client.application.extensions["somlier_state"]
    from online_server.swap import Current

    state.install(Current(None, None, "1"), SklearnPredictor(InterruptingEstimator(), "1"))
    answer = client.post("/result", json={"test": ROW})
    assert answer.status_code == 500 and answer.get_json()["error_code"] == "MODEL_FAILED"
    assert "KeyboardInterrupt" in answer.get_json()["message"]


def test_metrics_show_only_the_version_served_now(tmp_path, storage_root, zips):
    client = make_client(tmp_path, storage_root)
    for day in range(20, 26):
        (storage_root / MODEL / "model" / f"202611{day}.zip").write_bytes(zips["20261120"])
        assert client.post("/model_download").get_json()["version"] == f"202611{day}"
    lines = [line for line in client.get("/metrics").get_data(as_text=True).splitlines()
             if line.startswith("somlier_model_version_info{")]
    assert lines == ['somlier_model_version_info{version="20261125"} 1.0']


def test_an_install_waits_for_a_load_in_progress_so_the_gauge_names_what_is_served(tmp_path, storage_root):
    import threading

    from online_server.swap import Current

    client = make_client(tmp_path, storage_root)
    client.post("/model_download")
    state = client.application.extensions["somlier_state"]
    predictor = state.predictor
    installed = threading.Event()
    with state._lock:  # as the pointer follower holds it while it loads
        thread = threading.Thread(target=lambda: (state.install(Current(None, None, "x"), predictor), installed.set()))
        thread.start()
        assert not installed.wait(0.3)
    assert installed.wait(10)
    thread.join(10)


def test_a_worker_is_behind_a_switch_until_it_loaded_it_unless_its_load_failed(tmp_path, storage_root, zips, monkeypatch):
    """What keeps the front from taking requests a lagging worker would hold for a load (``ServingState.behind``)."""
    from online_server import state as serving_state
    from online_server.models import ModelLoadError

    switcher, lagging = make_client(tmp_path, storage_root), make_client(tmp_path, storage_root)
    state = lagging.application.wsgi_app.state
    assert not state.behind()  # no follower: requests load the switch themselves
    state.followed = True
    assert not state.behind() and not state.wake.is_set()  # nothing to serve anywhere yet
    assert switcher.post("/model_download").status_code == 200
    assert state.behind() and state.wake.is_set()  # the follower is woken to load it now
    state.ensure_loaded()
    assert not state.behind()

    (storage_root / MODEL / "model" / "20261121.zip").write_bytes(zips["20261121"])
    assert switcher.post("/model_download").get_json()["version"] == "20261121"

    def broken(*_):
        raise ModelLoadError("the model's files are gone")

    monkeypatch.setattr(serving_state, "load_predictor", broken)
    assert state.behind()
    answer = lagging.post("/result", json={"test": ROW})
    assert answer.status_code == 503 and "the model's files are gone" in answer.get_json()["message"]
    assert not state.behind()  # taken again: its requests get the 503 naming the failure

    (storage_root / MODEL / "model" / "20261122.zip").write_bytes(zips["20261120"])
    monkeypatch.undo()
    assert switcher.post("/model_download").get_json()["version"] == "20261122"

    def odd(*_):
        raise RuntimeError("an odd failure")  # not one the loaders name: still not "behind" forever

    monkeypatch.setattr(serving_state, "load_predictor", odd)
    assert state.behind()
    lagging.post("/result", json={"test": ROW})
    assert not state.behind()
    answer = lagging.post("/result", json={"test": ROW})
    assert answer.status_code == 503 and "RuntimeError: an odd failure" in answer.get_json()["message"]
