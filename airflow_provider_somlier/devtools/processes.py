"""Starting and stopping the servers the devtools run, with everything they started in turn.

Kept apart so that the emulator launcher, the local Airflow and the pid files all use
it without importing one another.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class ServerStartError(RuntimeError):
    """A server the project starts (PostgreSQL, Redis) exited or did not answer in time; the message holds its log."""


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


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float, what: str) -> None:
    """Wait until ``process`` listens on loopback ``port``; fail by name (with its log's tail) if it exits or is late."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{what} exited with code {process.returncode}; last lines of {log}:\n{log_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise ServerStartError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s; see {log}")


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a server's log, for an error message (empty when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
