"""Adaptive batching: the one-row predictions of concurrent requests in one ``predict`` call.

For one row, a model's ``predict`` is mostly fixed cost (input checks, a thread pool
waking up, a tree walk set up): 16 rows cost little more than one. So a process computes
one batch at a time, and the rows of the requests it holds meanwhile are gathered for the
next call, as TF Serving, Triton and BentoML do. A batch closes when it has ``max_batch``
rows, or when every request the process holds has either joined it or gone another way
(a request the server accepted but has not parsed yet still counts), or ``max_wait``
after its first row -- whichever comes first. A request alone is computed at once: the
server never waits for a request that has not arrived.

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
    __slots__ = ("data", "outcome", "done")

    def __init__(self, data: Any):
        self.data, self.outcome, self.done = data, None, False


class Gathering:
    """The requests one process holds, and the rows of those waiting for a prediction."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._undecided = 0  # held requests that have neither joined a batch nor gone another way
        self._waiting: list[_Row] = []
        self._opened_at = 0.0  # when the first waiting row arrived
        self._computing = False

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
                now = time.monotonic()
                if not self._computing and (
                    len(self._waiting) >= max_batch or self._undecided <= 0 or now >= self._opened_at + max_wait
                ):
                    self._compute(compute, max_batch)
                    continue
                self._changed.wait(None if self._computing else self._opened_at + max_wait - now)
        if isinstance(row.outcome[1], BaseException):
            raise row.outcome[1]
        return row.outcome

    def _compute(self, compute: Compute, max_batch: int) -> None:
        """Take the next batch and compute it outside the lock (held on entry and on return)."""
        batch, self._waiting = self._waiting[:max_batch], self._waiting[max_batch:]
        self._opened_at = time.monotonic()  # rows left over open the next batch now
        self._computing = True
        self._changed.release()
        try:
            try:
                predictor, outcomes = compute([r.data for r in batch])
            except BaseException as exc:  # noqa: BLE001 - every row of the batch gets the failure
                predictor, outcomes = None, [exc] * len(batch)
        finally:
            self._changed.acquire()
            self._computing = False
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
