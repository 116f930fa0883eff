"""A private Redis server, the Celery broker of the production-shaped local Airflow: its own port and folder.

``redis-server`` is Debian's package, installed by ``scripts/bootstrap.sh`` (the only
wheel that ships the server stops at Python 3.9). It listens on 127.0.0.1 only and keeps
an append-only file in its folder, as a production broker does: a task the scheduler
queued just before the broker stopped is still queued when it starts again (without it,
the task instance would wait in ``queued`` until ``[scheduler] task_queued_timeout``).
It can be stopped and started again on the same port and data: how the tests take the
broker away from running workers.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_somlier.devtools.emulator import free_port
from airflow_provider_somlier.devtools.processes import ServerStartError, log_tail, stop_process, wait_for_port

if TYPE_CHECKING:
    from airflow_provider_somlier.devtools.pidfiles import PidFiles


class RedisNotFoundError(RuntimeError):
    """``redis-server`` is not on the PATH: ``scripts/bootstrap.sh`` installs it."""


@dataclass
class RedisServer:
    folder: Path
    port: int
    pids: PidFiles | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.folder / "redis.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 30) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisNotFoundError("redis-server is not installed: run scripts/bootstrap.sh (it installs it as root)")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if self.pids is not None:
            self.pids.record("redis", self.process.pid)
        try:
            wait_for_port(self.port, self.process, self.log_path, timeout, f"Redis (pid {self.process.pid})")
        except ServerStartError:
            self.stop()
            raise

    def stop(self, timeout: float = 10) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process, signal.SIGTERM, timeout)
        if self.pids is not None:
            self.pids.forget("redis")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            from airflow_provider_somlier.devtools.airflow_local import ComponentDiedError

            raise ComponentDiedError(
                f"Redis (pid {self.process.pid}) exited with code {self.process.returncode}; "
                f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
            )


@contextlib.contextmanager
def running_redis(folder: Path, *, port: int | None = None, pids: PidFiles | None = None) -> Iterator[RedisServer]:
    server = RedisServer(folder=folder, port=port or free_port(), pids=pids)
    server.start()
    try:
        yield server
    finally:
        server.stop()
