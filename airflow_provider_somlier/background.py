"""Start a side call of a run on its own thread, to overlap it with the scoring.

A run has round trips that nothing waits on at once — the quality baseline's query, the
sweep of stale staging tables — and each would otherwise add its latency to every task.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_background(name: str, function: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
    """``function(*args)`` on a thread named ``somlier-<name>``; its result or error waits in the future.

    The thread is a daemon: a task that failed elsewhere exits at once, instead of waiting
    at interpreter exit (as an executor's worker thread would) for a call to a warehouse
    that may not answer until its deadline.
    """
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=run, name=f"somlier-{name}", daemon=True).start()
    return future
