"""Bound the native thread pools (OpenMP, BLAS) of each worker to its share of the cores.

OpenMP and BLAS size their pools to every core of the machine. Each gunicorn worker is a
process with its own pools, so N workers on C cores run N x C spinning threads: a
gradient-boosted model then answers 25-100x slower than with one thread per worker
(measured: 3-26 req/s against ~675 req/s, 2 workers on 2 cores). Every worker keeps
``NATIVE_THREADS`` threads, by default the cores this process may use divided by the
number of workers (at least one).

Two mechanisms, because libraries load at different times: the ``*_NUM_THREADS``
variables are read by a library when it is first loaded (after the fork, when the worker
imports the model's libraries, and in every thread it starts), and threadpoolctl resizes
the pools of the libraries already loaded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def available_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (a pod's limit)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def threads_per_worker(workers: int, configured: int = 0, cores: int | None = None) -> int:
    """``configured`` when set (> 0), else the worker's share of the cores, at least one."""
    if configured > 0:
        return configured
    return max(1, (cores or available_cores()) // max(1, workers))


def limit_native_threads(threads: int) -> None:
    """Hold every native pool of this process, loaded now or later, to ``threads`` threads."""
    for name in VARIABLES:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
