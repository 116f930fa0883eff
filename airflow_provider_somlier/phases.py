"""Where a run's time went: seconds per phase, in the summary and the task log.

A user whose day took long wants to know whether it was the registry, the model load,
the warehouse's read, the model's predict or the commit, without a profiler. Every step
of a run adds its seconds to one :class:`PhaseClock`; the summary carries them as
``phases`` and the log prints one line. Phases that overlap in time (the read-ahead
thread fetches the next page while the current one is predicted) are counted where the
run waits: ``read`` is the time spent waiting for a page, not the time the warehouse
took to send it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# In the order a run goes through them.
PHASES = (
    "checks",  # parsing the arguments, table metadata, the destination, the quality baseline
    "registry",  # resolving the model ref to a version
    "model_load",  # downloading (or finding in the host's cache) and loading the model
    "read",  # waiting for the feature pages
    "predict",  # features to the model's input, predict, its output to columns
    "profile",  # the quality profile of features and predictions
    "stage",  # writing the staging Parquet file
    "load",  # uploading it to the staging table
    "transaction",  # the transaction replacing the day (and its profile)
    "announce",  # the asset event and the lineage
)


class PhaseClock:
    """Seconds per phase of one run; phases not gone through stay at zero and are left out."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")
        self._seconds[phase] = self._seconds.get(phase, 0.0) + seconds

    @contextlib.contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        """Count the time of the ``with`` block (also when it raises) as ``phase``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started)

    def waiting(self, phase: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, counting the time spent waiting for each next one as ``phase``."""
        iterator = iter(items)
        while True:
            started = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.add(phase, time.perf_counter() - started)
                return
            self.add(phase, time.perf_counter() - started)
            yield item

    def seconds(self, phase: str) -> float:
        return self._seconds.get(phase, 0.0)

    def as_dict(self) -> dict[str, float]:
        """Phase → seconds (3 decimals), in run order: what the summary carries as ``phases``."""
        return {phase: round(self._seconds[phase], 3) for phase in PHASES if phase in self._seconds}

    def line(self) -> str:
        """One log line: ``checks 0.12 s, registry 0.30 s, …`` in run order."""
        return ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in self.as_dict().items())
