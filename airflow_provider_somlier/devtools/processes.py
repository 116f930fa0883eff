"""Stopping a server the devtools started, with everything it started in turn.

Kept apart so that the emulator launcher, the local Airflow and the pid files all use
it without importing one another.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL it if it is still there after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                # reap if it is our child
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)


def stop_process(process: subprocess.Popen, first_signal: int, timeout: float) -> None:
    """Send ``first_signal`` to a server we started; SIGKILL its process group if it outlives ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, first_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
