"""Pull the next items of a slow iterator on a background thread while the caller works.

Reading a day of features is mostly waiting on the network; scoring a page is mostly
CPU. Reading the next page while the current one is scored overlaps the two, and the
bounded queue keeps memory at ``depth`` pages ahead, whatever the size of the day.

The consumer never waits without a bound: when no item arrives for ``stall_seconds``
it cancels the source (if it can be cancelled) and raises, so a stream stuck on a
silent socket fails the task instead of holding its worker slot for hours.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_ITEM, _ERROR, _END = range(3)
# How long closing waits for the producer thread once its source was told to stop. A
# cancellable source (the read stream) stops in milliseconds; one that cannot be cancelled
# is left to its daemon thread rather than delaying the error (and the task's exit).
_JOIN_SECONDS = 1.0


class StalledError(TimeoutError):
    """No item arrived within ``stall_seconds``."""


def read_ahead(
    items: Iterable[T],
    depth: int = 2,
    *,
    stall_seconds: float | None = None,
    on_stall: Callable[[float], BaseException] | None = None,
) -> Iterator[T]:
    """Yield ``items`` in order, fetching up to ``depth`` of them ahead on a daemon thread.

    An exception raised while fetching is raised here, at the item where it happened.
    When the consumer waits more than ``stall_seconds`` for the next item, ``items`` is
    cancelled (its ``cancel()`` method, when it has one) and ``on_stall(stall_seconds)``
    (default: :class:`StalledError`) is raised. Closing this generator early (or dropping
    it) stops the thread the same way and closes ``items``.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if stall_seconds is not None and not stall_seconds > 0:
        raise ValueError(f"stall_seconds must be positive, got {stall_seconds!r}")
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                pending.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put((_ITEM, item)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((_ERROR, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="somlier-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = pending.get(timeout=stall_seconds)
            except queue.Empty:
                if on_stall is not None:
                    raise on_stall(stall_seconds) from None
                raise StalledError(f"no item arrived for {stall_seconds} s") from None
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        cancel = getattr(items, "cancel", None)
        if cancel is not None and thread.is_alive():
            cancel()
        # A source that cannot be cancelled may stay blocked; the thread is a daemon and
        # will not keep the process alive.
        thread.join(timeout=_JOIN_SECONDS)
