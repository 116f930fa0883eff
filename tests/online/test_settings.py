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
