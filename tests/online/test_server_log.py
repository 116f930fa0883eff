"""The server's own log: gunicorn's records print as themselves, not as logging errors."""

from __future__ import annotations

from tests.online.conftest import gunicorn_server


def test_a_worker_s_exit_record_prints_without_a_logging_error(tmp_path, storage_root):
    env = {"MODEL_NAME": "test_model_sci", "STORAGE": "local", "STORAGE_ROOT": str(storage_root),
           "WORK_DIR": str(tmp_path / "work")}
    with gunicorn_server(tmp_path, env):
        pass  # the server answered /healthz; leaving stops its master with SIGTERM, as `kill <pid>` does
    log = (tmp_path / "gunicorn.log").read_text()
    # gunicorn formats its records with the worker's %(process)d, in the worker's own process
    assert "Worker exiting (pid: " in log, log
    assert "Logging error" not in log and "TypeError" not in log, log
