"""PidFiles: what a demo killed with -9 left running is stopped by the next one, and nothing else."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

import pytest

from airflow_provider_somlier.devtools.pidfiles import PidFiles

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture
def group():
    """A process group leader with one more member, like a server and its worker."""
    leader = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, time; subprocess.Popen({SLEEPER!r}); time.sleep(600)"],
        start_new_session=True,
    )
    yield leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGKILL)
    leader.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_stale_stops_the_whole_group_a_pid_file_names_and_removes_the_file(tmp_path, group):
    pids = PidFiles(tmp_path)
    pids.record("server", group.pid)

    assert pids.stop_stale() == ["server"]

    group.wait(timeout=10)
    assert not _group_alive(group.pid)
    assert list(tmp_path.iterdir()) == []


def test_stop_stale_leaves_alone_a_pid_that_now_belongs_to_another_process(tmp_path, group):
    pids = PidFiles(tmp_path)
    (tmp_path / "server.pid").write_text(json.dumps({"pid": group.pid, "started": 1_000_000.0}))

    assert pids.stop_stale() == []

    assert group.poll() is None
    assert list(tmp_path.iterdir()) == []


def test_forget_removes_the_file_of_a_process_stopped_normally(tmp_path, group):
    pids = PidFiles(tmp_path)
    pids.record("server", group.pid)
    assert pids.recorded() == {"server": group.pid}

    pids.forget("server")

    assert pids.recorded() == {}
