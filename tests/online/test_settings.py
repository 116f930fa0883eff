"""Settings come from the environment, typed."""

from online_server.settings import Settings


def test_batching_and_thread_settings_are_read_typed_from_the_environment():
    settings = Settings.from_env({"MODEL_NAME": "m", "MAX_BATCH": "8", "MAX_BATCH_WAIT_MS": "0.5", "NATIVE_THREADS": "2"})
    assert (settings.max_batch, settings.max_batch_wait_ms, settings.native_threads) == (8, 0.5, 2)
    assert (Settings(model_name="m").max_batch, Settings(model_name="m").native_threads) == (32, 0)


def test_the_event_loop_is_uvloop_unless_asked_otherwise_and_a_bad_name_is_refused():
    import asyncio
    import subprocess
    import sys
    from pathlib import Path

    import pytest
    import uvloop

    from online_server.front_worker import new_event_loop

    assert Settings(model_name="m").event_loop == "auto"
    for kind in ("auto", "uvloop", "asyncio"):
        loop = new_event_loop(kind)
        try:
            assert isinstance(loop, asyncio.AbstractEventLoop)
            assert isinstance(loop, uvloop.Loop) == (kind != "asyncio"), kind
        finally:
            loop.close()
    with pytest.raises(ValueError, match="EVENT_LOOP='tornado': expected one of auto, uvloop, asyncio"):
        Settings.from_env({"MODEL_NAME": "m", "EVENT_LOOP": "tornado"})
    # The server refuses to start, naming the value, before any worker runs.
    checked = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "online_server/gunicorn.conf.py", "--check-config"],
        env={"PATH": "/usr/bin:/bin", "EVENT_LOOP": "tornado", "MODEL_NAME": "m"},
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )
    assert checked.returncode != 0 and "EVENT_LOOP='tornado'" in checked.stdout + checked.stderr


def check_config(env: dict[str, str]):
    """``gunicorn --check-config`` with only ``env``: the server's start, up to its first worker."""
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "online_server/gunicorn.conf.py", "--check-config"],
        env={"PATH": "/usr/bin:/bin"} | env, capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_a_number_setting_that_is_not_a_number_is_refused_naming_the_variable_and_the_value():
    import dataclasses

    import pytest

    numbers = [f for f in dataclasses.fields(Settings) if f.type in ("int", "float")]
    assert {f.name for f in numbers} >= {"max_batch", "ftp_port", "max_batch_wait_ms", "read_timeout_seconds"}
    for field in numbers:
        key = field.name.upper()
        expected = "a whole number" if field.type == "int" else "a number"
        for bad in ("abc", "-1", "nan", "inf") if field.type == "float" else ("abc", "-1", "2.5"):
            with pytest.raises(ValueError, match=f"{key}='{bad}': expected {expected} >= 0"):
                Settings.from_env({"MODEL_NAME": "m", key: bad})
    for key, bad in (("MAX_BATCH", "abc"), ("READ_TIMEOUT_SECONDS", "soon"), ("WORKERS", "two"), ("TIMEOUT", "1m")):
        checked = check_config({"MODEL_NAME": "m", key: bad})
        assert checked.returncode != 0 and f"{key}='{bad}': expected" in checked.stderr, checked.stderr


def test_an_unknown_model_type_or_storage_is_refused_at_start_naming_the_accepted_ones():
    import pytest

    with pytest.raises(ValueError, match="MODEL_TYPE='bogus': expected one of sklearn, custom, tf, mlflow"):
        Settings.from_env({"MODEL_NAME": "m", "MODEL_TYPE": "bogus"})
    with pytest.raises(ValueError, match="STORAGE='s3': expected one of local, ftp, gcs"):
        Settings(model_name="m", storage="s3")
    checked = check_config({"MODEL_NAME": "m", "MODEL_TYPE": "bogus"})
    assert checked.returncode != 0, checked.stderr
    assert "MODEL_TYPE='bogus': expected one of sklearn, custom, tf, mlflow" in checked.stderr, checked.stderr
    assert "Traceback" not in checked.stderr and len(checked.stderr.strip().splitlines()) == 1, checked.stderr
    assert "MODEL_NAME is not set" in check_config({}).stderr
    with pytest.raises(ValueError, match="MODEL_TYPE=mlflow needs MODEL_REF: expected the registry model to serve"):
        Settings.from_env({"MODEL_NAME": "m", "MODEL_TYPE": "mlflow"})


def test_a_blank_number_setting_is_its_default_in_the_workers_too(tmp_path, storage_root):
    """The start's check takes ``MAX_BATCH=" "`` as the default: so must each worker, or none boots."""
    import requests

    from tests.online.conftest import MODEL, ROW, gunicorn_server

    blank = {key: " " for key in ("MAX_BATCH", "READ_TIMEOUT_SECONDS", "PREDICT_TIMEOUT_SECONDS", "MAX_BODY_BYTES")}
    assert Settings.from_env({"MODEL_NAME": "m"} | blank) == Settings(model_name="m")
    # what each front worker reads at boot (a worker that fails here is respawned forever, never answering)
    from gunicorn.config import Config

    from online_server.front_worker import front_settings

    front = front_settings(Config(), blank)
    assert (front.threads, front.read_timeout, front.limits.body) == (32, 10.0, 1 << 20)
    env = {"MODEL_NAME": MODEL, "STORAGE": "local", "STORAGE_ROOT": str(storage_root),
           "WORK_DIR": str(tmp_path / "work")} | blank
    for worker in ("online_server.front_worker.FrontWorker", "online_server.worker.GatheringWorker"):
        (tmp_path / worker).mkdir()
        with gunicorn_server(tmp_path / worker, env | {"WORKER_CLASS": worker}) as url:
            assert requests.post(f"{url}/model_download", timeout=60).status_code == 200
            answer = requests.post(f"{url}/result", json={"test": ROW}, timeout=30)
            assert answer.status_code == 200, (answer.text, (tmp_path / worker / "gunicorn.log").read_text())
