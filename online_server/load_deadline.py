"""A new version's load and smoke test, waited for at most ``LOAD_TIMEOUT_SECONDS``.

A model's own code runs in ``load()`` and in its first ``predict``: it may wait on a socket
with no timeout, spin, or deadlock. A thread cannot be stopped, so the load runs on a thread
of its own and the download that asked for it stops waiting at the deadline: it answers
504 naming the limit, which ends its hold on the download lock (the next download starts at
once instead of waiting behind it for good), the previous version keeps serving, and the
worker is asked to retire (``RETIRE_WORKER``) so that the stuck thread ends with its process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Set in a request's WSGI environ by the app: the worker should stop accepting and exit once it
# has answered what it holds (the front does; its reason is logged).
RETIRE_WORKER = "somlier.retire_worker"


class LoadTimeoutError(Exception):
    """A new version's load or smoke test did not end within LOAD_TIMEOUT_SECONDS; it still runs on its thread."""


def within(seconds: float, what: str, work: Callable[[], T]) -> T:
    """``work()``'s result, or its exception, if it ends within ``seconds``; else LoadTimeoutError naming ``what``.

    ``BaseException``s from the model's code (``SystemExit``, ``KeyboardInterrupt``) are raised
    here as they were raised there: the caller already treats any of them as a refused version.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, raised there
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="somlier-model-load", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise LoadTimeoutError(
            f"{what} did not end within LOAD_TIMEOUT_SECONDS={seconds:g}; the previous version keeps serving "
            "and this worker is replaced (the model's code still runs on a thread that cannot be stopped)"
        )
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
