"""The default gunicorn worker: an asyncio front reads whole requests, threads behind it answer them.

``gunicorn -k online_server.front_worker.FrontWorker`` (the default in ``gunicorn.conf.py``).
Why an event loop in front of threads, and not gunicorn's sync, gthread or the earlier
``GatheringWorker``: each of those reads a request on the thread that answers it, so a
client that stalls mid-request holds that thread -- a few dozen such sockets locked every
client out. Here reading holds no thread (``online_server.front``), and the threads, one
per request being answered, are what adaptive batching gathers rows from, as before.

Settings (environment): ``READ_TIMEOUT_SECONDS`` (default 10), ``PREDICT_TIMEOUT_SECONDS``
(default 30), ``MAX_BATCH`` (default 32: also the threads per worker, at least ``THREADS``),
``EVENT_LOOP`` (``auto``: uvloop when installed, else ``asyncio``; or either by name),
gunicorn's ``worker_connections`` and ``limit_request_line`` / ``limit_request_fields``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from gunicorn.workers.base import Worker

from online_server.framing import Limits
from online_server.front import Front, FrontSettings
from online_server.settings import Settings, check_event_loop, number_setting

TICK_SECONDS = 0.5  # how often the loop tells the arbiter it lives and checks whether to stop


def front_settings(cfg, environ=os.environ) -> FrontSettings:
    """The front's settings from the environment (defaults: ``Settings``) and gunicorn's configuration."""
    threads = max(1, number_setting(environ, "max_batch"), int(cfg.threads or 1))
    return FrontSettings(
        read_timeout=number_setting(environ, "read_timeout_seconds"),
        predict_timeout=number_setting(environ, "predict_timeout_seconds"),
        threads=threads,
        max_connections=max(threads, int(cfg.worker_connections or 1000)),
        limits=Limits(
            request_line=int(cfg.limit_request_line) or 1 << 16,  # 0: gunicorn's "unlimited"
            fields=int(cfg.limit_request_fields or 100),
            body=number_setting(environ, "max_body_bytes"),
        ),
    )


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The front's loop: ``uvloop`` (``auto``: when installed) or the standard library's.

    uvloop accepts a connection and makes its transport in C: when a thousand stalled sockets
    are cut off and reconnect together, the normal clients wait less behind them
    (``benchmarks/slow_clients.py``: /result p99 59 vs 88 ms with the standard loop).
    """
    check_event_loop(kind)
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError as exc:
            if kind == "uvloop":
                raise ImportError("EVENT_LOOP=uvloop, but uvloop is not installed (pip install uvloop)") from exc
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class FrontWorker(Worker):
    """Runs one ``Front`` on an asyncio loop until gunicorn stops the worker or the front retires."""

    def run(self) -> None:
        loop = new_event_loop(os.environ.get("EVENT_LOOP") or Settings.event_loop)
        asyncio.set_event_loop(loop)
        state = getattr(self.wsgi, "extensions", {}).get("somlier_state")  # the Flask app's ServingState
        front = Front(self.wsgi, front_settings(self.cfg), loop, busy=state.behind if state else lambda: False)
        self.front = front
        front.serve([listener.sock if hasattr(listener, "sock") else listener for listener in self.sockets])
        self._stop_by = None
        loop.call_soon(self._tick, loop, front)
        try:
            loop.run_forever()
        finally:
            front.close()
            loop.close()
        if front.overdue or front.abandoned:  # a thread that may never return must not keep the process alive
            logging.shutdown()
            sys.stderr.flush()
            os._exit(0)

    def _tick(self, loop: asyncio.AbstractEventLoop, front: Front) -> None:
        self.notify()
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            self.alive = False
        if front.answered >= self.max_requests:
            front.retire("max_requests reached")
        if not self.alive:
            front.retire("gunicorn asked the worker to stop")
            if self._stop_by is None:
                self._stop_by = loop.time() + self.cfg.graceful_timeout
        if front.done or (self._stop_by is not None and loop.time() >= self._stop_by):
            loop.stop()
            return
        loop.call_later(TICK_SECONDS, self._tick, loop, front)
