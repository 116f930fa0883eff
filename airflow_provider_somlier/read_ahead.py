"""Pull the next items of a slow iterator on a background thread while the caller works.

Reading a day of features is mostly waiting on the network; scoring a page is mostly
CPU. Reading the next page while the current one is scored overlaps the two, and the
bounded queue keeps memory at ``depth`` pages ahead, whatever the size of the day.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_ITEM, _ERROR, _END = range(3)


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, fetching up to ``depth`` of them ahead on a daemon thread.

    An exception raised while fetching is raised here, at the item where it happened.
    Closing this generator early (or dropping it) stops the thread and closes ``items``.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
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
            kind, value = pending.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()
