"""Where the suite's time goes: wall and CPU seconds per test module, servers included.

``SOMLIER_TEST_PROFILE=FILE ./scripts/test.sh`` appends one line per module to FILE (each
pytest-xdist worker its own lines): ``module  wall_s  cpu_s``. CPU counts the worker and
every process it started (Airflow's scheduler, API server and task processes, the demo,
servers), living or reaped, so a module that starts a whole Airflow shows what it costs the
machine, not only how long it waited. Processes that detach from the worker's tree (none
of the project's servers do) are not counted.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(root: int) -> float:
    """CPU of ``root``, its reaped children, and every living descendant (with their reaped children)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = sum(int(value) for value in fields[11:15]) / _TICKS  # utime stime cutime cstime
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    stack = list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, ()))
    return total


class ModuleCost:
    """A pytest plugin: on each change of module (and at the end), one line for the module just run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.module: str | None = None
        self.started = (0.0, 0.0)

    def _close(self) -> None:
        if self.module is None:
            return
        wall, cpu = time.monotonic() - self.started[0], _tree_cpu_seconds(os.getpid()) - self.started[1]
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"{self.module}\t{wall:.1f}\t{cpu:.1f}\n")

    def pytest_runtest_setup(self, item) -> None:
        module = item.nodeid.split("::", 1)[0]
        if module != self.module:
            self._close()
            self.module, self.started = module, (time.monotonic(), _tree_cpu_seconds(os.getpid()))

    def pytest_sessionfinish(self) -> None:
        self._close()
