"""Adaptive batching: the one-row predictions of concurrent requests in one ``predict`` call.

For one row, a model's ``predict`` is mostly fixed cost (input checks, a thread pool
waking up, a tree walk set up): 16 rows cost little more than one. So a process computes
one batch at a time, and the rows of the requests it holds meanwhile are gathered for the
next call, as TF Serving, Triton and BentoML do. A batch closes when it has ``max_batch``
rows, or when every request the process holds has either joined it or gone another way
(a request the server accepted but has not parsed yet still counts), or ``max_wait``
after its first row -- whichever comes first. A request alone is computed at once: the
server never waits for a request that has not arrived. A batch that computes for longer
than ``overlap_after`` seconds (a model stuck on one input) no longer holds the next one
back: the next batch is computed beside it, so one stuck predict does not stop the rest.

The process's server (``online_server.worker``) hands each request a ``Ticket`` when it
accepts the connection, so a batch also waits for requests still being read; under other
servers the ticket is issued when the request reaches the app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# compute(rows) -> (predictor, one outcome per row: its answer, or the exception it raised)
Compute = Callable[[list], tuple[Any, list]]


class _Row:
    __slots__ = ("data", "outcome", "taken", "done")

    def __init__(self, data: Any):
        self.data, self.outcome, self.taken, self.done = data, None, False, False


class Gathering:
    """The requests one process holds, and the rows of those waiting for a prediction."""

    def __init__(self, overlap_after: float = 1.0) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._undecided = 0  # held requests that have neither joined a batch nor gone another way
        self._waiting: list[_Row] = []
        self._opened_at = 0.0  # when the first waiting row arrived
        self._computing = 0  # batches being computed
        self._computing_since = 0.0  # when the latest of them started
        self.overlap_after = overlap_after

    def arrive(self, count: int = 1) -> list[Ticket]:
        """Tickets for ``count`` requests the process now holds."""
        with self._changed:
            self._undecided += count
        return [Ticket(self) for _ in range(count)]

    def _leave(self) -> None:
        with self._changed:
            self._undecided -= 1
            self._changed.notify_all()

    def _predict(self, data: Any, compute: Compute, max_batch: int, max_wait: float) -> tuple[Any, Any]:
        row = _Row(data)
        with self._changed:
            self._undecided -= 1
            if not self._waiting:
                self._opened_at = time.monotonic()
            self._waiting.append(row)
            self._changed.notify_all()
            while not row.done:
                if row.taken:  # in a batch being computed: its end notifies
                    self._changed.wait()
                    continue
                now = time.monotonic()
                free_at = self._computing_since + self.overlap_after if self._computing else now
                if now < free_at:
                    self._changed.wait(free_at - now)
                elif len(self._waiting) >= max_batch or self._undecided <= 0 or now >= self._opened_at + max_wait:
                    self._compute(compute, max_batch)
                else:
                    self._changed.wait(self._opened_at + max_wait - now)
        if isinstance(row.outcome[1], BaseException):
            raise row.outcome[1]
        return row.outcome

    def _compute(self, compute: Compute, max_batch: int) -> None:
        """Take the next batch and compute it outside the lock (held on entry and on return)."""
        batch, self._waiting = self._waiting[:max_batch], self._waiting[max_batch:]
        for r in batch:
            r.taken = True
        self._opened_at = self._computing_since = time.monotonic()  # rows left over open the next batch now
        self._computing += 1
        self._changed.release()
        try:
            try:
                predictor, outcomes = compute([r.data for r in batch])
            except BaseException as exc:  # noqa: BLE001 - every row of the batch gets the failure
                predictor, outcomes = None, [exc] * len(batch)
        finally:
            self._changed.acquire()
            self._computing -= 1
        for r, outcome in zip(batch, outcomes):
            r.outcome, r.done = (predictor, outcome), True
        self._changed.notify_all()


class Ticket:
    """One held request: it either joins a batch (``predict``) or goes another way (``leave``), once."""

    __slots__ = ("_gathering", "_open")

    def __init__(self, gathering: Gathering):
        self._gathering, self._open = gathering, True

    def leave(self) -> None:
        """This request will not join a batch (idempotent: the server calls it for every request it ends)."""
        if self._open:
            self._open = False
            self._gathering._leave()

    def predict(self, data: Any, compute: Compute, max_batch: int, max_wait: float) -> tuple[Any, Any]:
        """(predictor, answer) for one row, computed in a batch with the rows of concurrent requests."""
        if not self._open:
            raise RuntimeError("this request already left the gathering")
        self._open = False
        return self._gathering._predict(data, compute, max_batch, max_wait)
