"""Pid files for the long-lived processes the demo starts, so that nothing outlives a killed demo.

Every server the demo starts (emulator, MLflow UI, Airflow's components) runs in its own
process group and is recorded as ``<folder>/<name>.pid`` (JSON: pid and start time) the
moment it is spawned. A demo that stops normally, on Ctrl-C or on SIGTERM/SIGHUP removes
its files as it stops each process; one killed with ``-9`` cannot, so the next demo stops
what its files still name before starting anything. The start time guards against a
recycled pid: a file whose pid now belongs to another process is dropped, never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from airflow_provider_somlier.devtools.processes import stop_pid

_SAME_PROCESS_SECONDS = 1.0  # create_time() is rounded differently across reads on some systems


@dataclass(frozen=True)
class PidFiles:
    """One folder of pid files, one file per process group leader."""

    folder: Path

    def record(self, name: str, pid: int) -> None:
        """Remember ``pid`` (a process group leader) under ``name``; written before anything waits on it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            started = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            started = None
        path = self.folder / f"{name}.pid"
        path.with_suffix(".tmp").write_text(json.dumps({"pid": pid, "started": started}))
        path.with_suffix(".tmp").replace(path)

    def forget(self, name: str) -> None:
        """Drop ``name``'s file once its process is stopped."""
        (self.folder / f"{name}.pid").unlink(missing_ok=True)

    def recorded(self) -> dict[str, int]:
        """Name → pid of every file in the folder (unreadable files are skipped)."""
        found = {}
        for path in sorted(self.folder.glob("*.pid")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                found[path.stem] = int(json.loads(path.read_text())["pid"])
        return found

    def stop_stale(self, timeout: float = 15.0) -> list[str]:
        """Stop every process group the folder still names (TERM, then KILL); return their names.

        A pid that is alive but started at another time than recorded was recycled by the
        system and is left alone. A pid that is gone may still lead a group whose other
        members live on (server workers); the group is signalled all the same, which is
        safe because the system does not hand out a pid that is still a group's id.
        """
        stopped = []
        for path in sorted(self.folder.glob("*.pid")):
            try:
                entry = json.loads(path.read_text())
                pid, started = int(entry["pid"]), entry.get("started")
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if _is_recycled(pid, started):
                path.unlink(missing_ok=True)
                continue
            if _group_alive(pid):
                stop_pid(pid, timeout=timeout)
                stopped.append(path.stem)
            path.unlink(missing_ok=True)
        return stopped


def _is_recycled(pid: int, started: float | None) -> bool:
    try:
        now_started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    return started is None or abs(now_started - started) > _SAME_PROCESS_SECONDS


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
