"""Run the local BigQuery emulator as a child process and describe how to connect to it.

``python -m airflow_provider_somlier.devtools.emulator start|stop|status`` manages a
long-lived emulator for the demo (pid and ports in ``.somlier/bqemulator.json``);
tests use :func:`running_emulator` to get a private one on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_somlier.devtools.processes import stop_pid

if TYPE_CHECKING:
    from airflow_provider_somlier.devtools.pidfiles import PidFiles

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("bqemulator_launch.py")
DEFAULT_PROJECT = "somlier-local"
STATE_FILE = REPO_ROOT / ".somlier" / "bqemulator.json"


def emulator_python() -> str:
    """The interpreter of the emulator's own virtual environment."""
    return os.environ.get("SOMLIER_BQEMULATOR_PYTHON", str(REPO_ROOT / ".venv-bqemulator" / "bin" / "python"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 now (a closed connection's
    TIME_WAIT does not count: servers set SO_REUSEADDR, so the probe does too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Emulator:
    pid: int
    rest_port: int
    grpc_port: int
    project: str
    log_path: str

    @property
    def api_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def storage_read_endpoint(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def connection_extras(self) -> dict[str, object]:
        """Extras of a ``google_cloud_platform`` connection pointing at this emulator."""
        return {
            "project": self.project,
            "is_anonymous": True,
            "api_endpoint": self.api_endpoint,
            "storage_read_endpoint": self.storage_read_endpoint,
            "retry_deadline_seconds": 30,
        }

    def connection_uri_json(self) -> str:
        """The value for ``AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT``."""
        return json.dumps({"conn_type": "google_cloud_platform", "extra": self.connection_extras()})


def _wait_ready(emulator: Emulator, process: subprocess.Popen | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"{emulator.api_endpoint}/bigquery/v2/projects/{emulator.project}/datasets"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"bqemulator exited with {process.returncode}; see {emulator.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"bqemulator did not answer on {url} within {timeout:.0f}s; see {emulator.log_path}")


def start(
    log_path: Path,
    *,
    rest_port: int | None = None,
    grpc_port: int | None = None,
    project: str = DEFAULT_PROJECT,
    data_dir: Path | None = None,
    pids: PidFiles | None = None,
) -> tuple[Emulator, subprocess.Popen]:
    """Start an emulator and wait until its REST API answers (recorded in ``pids`` as ``bqemulator``)."""
    rest_port = rest_port or free_port()
    grpc_port = grpc_port or free_port()
    command = [
        emulator_python(), str(LAUNCHER), "start",
        "--rest-port", str(rest_port), "--grpc-port", str(grpc_port),
        "--project", project, "--log-level", "warning", "--log-format", "console",
    ]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["--persistent", "--data-dir", str(data_dir)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if pids is not None:
        pids.record("bqemulator", process.pid)
    emulator = Emulator(process.pid, rest_port, grpc_port, project, str(log_path))
    try:
        _wait_ready(emulator, process)
    except BaseException:
        stop_pid(process.pid)
        if pids is not None:
            pids.forget("bqemulator")
        raise
    return emulator, process


@contextlib.contextmanager
def running_emulator(log_path: Path, **kwargs) -> Iterator[Emulator]:
    emulator, process = start(log_path, **kwargs)
    try:
        yield emulator
    finally:
        stop_pid(process.pid)
        if kwargs.get("pids") is not None:
            kwargs["pids"].forget("bqemulator")


def _read_state() -> Emulator | None:
    if not STATE_FILE.exists():
        return None
    emulator = Emulator(**json.loads(STATE_FILE.read_text()))
    try:
        os.kill(emulator.pid, 0)
    except ProcessLookupError:
        return None
    return emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Manage the local BigQuery emulator used by the SoMLier demo.")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--rest-port", type=int, default=9050)
    parser.add_argument("--grpc-port", type=int, default=9060)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".somlier" / "bigquery")
    args = parser.parse_args(argv)
    current = _read_state()
    if args.action == "status":
        print(json.dumps(asdict(current) if current else {"running": False}))
        return 0 if current else 1
    if args.action == "stop":
        if current:
            stop_pid(current.pid)
        STATE_FILE.unlink(missing_ok=True)
        return 0
    if current:
        print(f"bqemulator already running (pid {current.pid}) on {current.api_endpoint}")
        return 0
    for flag, port in (("--rest-port", args.rest_port), ("--grpc-port", args.grpc_port)):
        if not _port_free(port):
            print(f"bqemulator: port {port} ({flag}) is in use; stop what holds it or choose another with {flag} N",
                  file=sys.stderr)
            return 2
    try:
        emulator, _ = start(
            STATE_FILE.parent / "bqemulator.log",
            rest_port=args.rest_port,
            grpc_port=args.grpc_port,
            data_dir=args.data_dir,
        )
    except (RuntimeError, TimeoutError) as exc:
        print(f"bqemulator: {exc}", file=sys.stderr)
        return 1
    STATE_FILE.write_text(json.dumps(asdict(emulator)))
    print(f"bqemulator running (pid {emulator.pid}): REST {emulator.api_endpoint}, Storage Read {emulator.storage_read_endpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
