"""The asyncio front of a worker: a request is read whole, within a deadline, before it costs a thread.

A thread that reads a socket is held by whoever is at the other end: a client that sends
half a request line, or headers and half a body, or nothing, or a chunked body that stops,
keeps it for as long as it likes (measured: ~33 such sockets locked every other client out
of the server with sync-style workers). Here one event loop per worker reads every
connection without blocking, each within ``READ_TIMEOUT_SECONDS`` from its accept (plus up
to 10 %, see ``READ_DEADLINE_SPREAD``); only a request read whole is handed to a thread (the
WSGI app, adaptive batching). A stalled client is answered ``408`` and closed, and costs the
others a timer and a few hundred bytes.

Also answered off the predict path: ``GET /healthz`` on the loop itself, ``/readyz`` and
``/metrics`` on threads of their own. A request whose answer takes longer than
``PREDICT_TIMEOUT_SECONDS`` is answered ``504``; its thread cannot be stopped, so the worker
then stops accepting, answers every other request it holds and exits, and gunicorn starts a
fresh one (the other workers keep accepting meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from online_server import access
from online_server.batching import Gathering
from online_server.framing import ChunkedBody, FramingError, Head, Limits, parse_head
from online_server.hot_path import TICKET
from online_server.load_deadline import RETIRE_WORKER
from online_server.raw_http import call_app, environ_for, json_error, response

log = logging.getLogger(__name__)

PROBES = ("/readyz", "/metrics")  # answered on their own threads: never queued behind a predict
PREDICTS = ("/result", "/")  # POST paths under PREDICT_TIMEOUT_SECONDS (a download may take longer)
ACCEPT_AT_ONCE = 64  # connections taken per wake-up, so reading never waits long behind accepting
PROBE_ROOM = 4  # requests a worker takes beyond its threads (they wait for one; /healthz does not)
BUSY_ACCEPT_AFTER = 0.05  # a worker busy this long takes connections again (for probes and free threads)
RECHECK_SECONDS = 0.01  # how soon a worker that stopped accepting looks again (a load may have ended)
# Each connection's read deadline is READ_TIMEOUT_SECONDS plus up to this fraction of it, at
# random: sockets opened together (a slowloris burst) are then not all cut off -- and opened
# again by their owner -- in the same millisecond, a storm of accepts that the normal clients
# would wait behind (measured: /result p99 with 1,000 stalled sockets 59 → 50 ms).
READ_DEADLINE_SPREAD = 0.1


@dataclass(frozen=True)
class FrontSettings:
    read_timeout: float = 10.0  # seconds from accept to a whole request (head and body)
    predict_timeout: float = 30.0  # seconds from a whole request to its answer
    threads: int = 32  # requests answered at once (the adaptive batch is formed from these)
    max_connections: int = 1000  # connections open at once, being read or answered
    limits: Limits = Limits()


class Front:
    """One worker's connections: read them, hand whole requests to threads, write the answers."""

    def __init__(self, app: Callable, settings: FrontSettings, loop: asyncio.AbstractEventLoop,
                 busy: Callable[[], bool] = lambda: False):
        self.app, self.settings, self.loop, self.busy = app, settings, loop, busy
        self._recheck: asyncio.TimerHandle | None = None
        self._busy_since = 0.0  # when the worker last went from no request to answer to one
        self._ready: list[HeldRequest] = []  # read whole in this turn of the loop, not handed over yet
        self.pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="somlier-request")
        self.probes = ThreadPoolExecutor(2, thread_name_prefix="somlier-probe")
        self.gathering = Gathering()
        self.listeners: list[socket.socket] = []
        self.accepting = False
        self.retiring = ""  # why this worker stopped accepting ("" while it accepts)
        self.connections = 0  # open, being read or answered
        self.held = 0  # whole requests handed to a thread and not answered yet
        self.overdue = 0  # of those, answered 504 while their thread still runs
        self.abandoned = False  # a model's load was given up while its thread still runs
        self.answered = 0

    # -- accepting -------------------------------------------------------------------------
    def serve(self, listeners: list[socket.socket]) -> None:
        self.listeners = listeners
        for listener in listeners:
            listener.setblocking(False)
        self._resume()

    def _may_accept(self) -> bool:
        # Like the gathering worker, a worker with nothing to answer takes every connection
        # waiting, and a busy one leaves new connections to free workers: its rows then form
        # one batch, and load spreads as with sync workers (measured: taking connections
        # while computing gave smaller batches and ~15 % fewer HGB answers a second). A worker
        # busy for BUSY_ACCEPT_AFTER -- a slow predict -- takes connections again while it
        # has free threads (and PROBE_ROOM more, so probes reach a worker whose threads all
        # predict). Never while its app loads a model or lags a switch another worker made
        # (``busy``: ``ServingState.behind``). Connections still being
        # read hold no thread: stalled clients never stop a worker from accepting.
        if self.retiring or self.connections >= self.settings.max_connections or self.busy():
            return False
        working = self.held - self.overdue
        return working == 0 or (working < self.settings.threads + PROBE_ROOM
                                and self.loop.time() - self._busy_since >= BUSY_ACCEPT_AFTER)

    def _resume(self) -> None:
        if not self.accepting and self._may_accept():
            self.accepting = True
            for listener in self.listeners:
                self.loop.add_reader(listener.fileno(), self._accept, listener)
        elif not self.accepting and not self.retiring and not self._recheck:
            self._recheck = self.loop.call_later(RECHECK_SECONDS, self._rechecked)

    def _rechecked(self) -> None:
        self._recheck = None
        self._resume()

    def _pause(self) -> None:
        if self.accepting:
            self.accepting = False
            for listener in self.listeners:
                self.loop.remove_reader(listener.fileno())

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPT_AT_ONCE):
            if not self._may_accept():
                self._pause()
                self._resume()  # looks again soon
                return
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # EMFILE and friends: stop taking connections for a moment
                log.warning("accept failed: %s", exc)
                self._pause()
                self.loop.call_later(0.5, self._resume)
                return
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            self.loop.create_task(self._connect(sock, peer))

    async def _connect(self, sock: socket.socket, peer) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: RequestReader(self, peer), sock)
        except OSError:  # the peer left before the transport was made
            sock.close()
            self._closed()

    def _closed(self) -> None:
        self.connections -= 1
        self._resume()

    # -- answering -------------------------------------------------------------------------
    def dispatch(self, reader: RequestReader, head: Head, body: bytes) -> None:
        """A whole request: answer it here (``/healthz``) or on a thread, within the predict deadline."""
        path = head.target.partition("?")[0]
        if path == "/healthz" and head.method in ("GET", "HEAD"):
            reader.finish(self._healthz(head))
            return
        environ = environ_for(head, body, reader.peer, reader.local)
        probe = path in PROBES and head.method in ("GET", "HEAD")
        if probe:
            future = self.probes.submit(call_app, self.app, environ)
            future.add_done_callback(lambda done: self.loop.call_soon_threadsafe(reader.finish_with, done))
            return
        predict = head.method == "POST" and path in PREDICTS
        if self.held == self.overdue:
            self._busy_since = self.loop.time()
        self.held += 1
        request = HeldRequest(reader, environ, predict and path == "/result")
        if predict:
            request.deadline = self.loop.call_later(self.settings.predict_timeout, self._too_late, request)
        if not self._ready:
            self.loop.call_soon(self._hand_over)
        self._ready.append(request)

    def _hand_over(self) -> None:
        """Give the threads every request read in this turn of the loop, together.

        Their tickets are issued before any of them starts, so the next batch waits for all
        of them (as the gathering worker's accept of every connection waiting did).
        """
        ready, self._ready = self._ready, []
        batched = [request for request in ready if request.batched]
        for request, ticket in zip(batched, self.gathering.arrive(len(batched))):
            request.environ[TICKET] = ticket
        for request in ready:
            future = self.pool.submit(call_app, self.app, request.environ)
            future.add_done_callback(lambda done, request=request: self.loop.call_soon_threadsafe(
                self._answered, request, done))

    def _answered(self, request: HeldRequest, future: Future) -> None:
        self.held -= 1
        self.answered += 1
        if request.overdue:
            self.overdue -= 1
        else:
            if request.deadline is not None:
                request.deadline.cancel()
            request.reader.finish_with(future)
        why = request.environ.get(RETIRE_WORKER)
        if why:  # the app left a thread running that cannot be stopped
            self.abandoned = True
            self.retire(why)
        self._resume()

    def _too_late(self, request: HeldRequest) -> None:
        request.overdue = True
        self.overdue += 1
        request.reader.finish(json_error(
            504, "PREDICT_TIMEOUT",
            f"no answer within PREDICT_TIMEOUT_SECONDS={self.settings.predict_timeout:g}; try again",
        ))
        self.retire("a request ran past PREDICT_TIMEOUT_SECONDS: its thread cannot be stopped")

    def _healthz(self, head: Head) -> bytes:
        started = time.perf_counter()
        body = json.dumps({"status": "ok"}).encode() + b"\n"
        answer = response(200, [("Content-Type", "application/json"), *access.response_headers("")], body,
                          head_only=head.method == "HEAD")
        access.record(head.method, "/healthz", "healthz", 200, time.perf_counter() - started, "")
        return answer

    # -- leaving ---------------------------------------------------------------------------
    def retire(self, why: str) -> None:
        """Stop accepting; the worker exits once every request it holds is answered (``done``)."""
        if not self.retiring:
            self.retiring = why
            log.warning("worker %s stops accepting and will exit: %s", os.getpid(), why)
            self._pause()

    @property
    def done(self) -> bool:
        """Retiring, and every request but the overdue ones answered."""
        return bool(self.retiring) and self.held == self.overdue

    def close(self) -> None:
        """Stop the thread pools (without waiting for an overdue thread: it may never return)."""
        self._pause()
        if self._recheck is not None:
            self._recheck.cancel()
        self.pool.shutdown(wait=not self.overdue, cancel_futures=True)
        self.probes.shutdown(wait=False, cancel_futures=True)


class HeldRequest:
    __slots__ = ("reader", "environ", "batched", "deadline", "overdue")

    def __init__(self, reader: RequestReader, environ: dict, batched: bool):
        self.reader, self.environ, self.batched = reader, environ, batched
        self.deadline: asyncio.TimerHandle | None = None
        self.overdue = False


class RequestReader(asyncio.Protocol):
    """One connection: reads one request within the read deadline, hands it over, writes one answer."""

    def __init__(self, front: Front, peer):
        self.front, self.peer, self.local = front, peer, None
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: Head | None = None
        self.chunked: ChunkedBody | None = None
        self.complete = False  # the request was read whole and handed over
        self.finished = False  # an answer was written (or the connection is gone)
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.local = transport.get_extra_info("sockname")
        deadline = self.front.settings.read_timeout * (1 + READ_DEADLINE_SPREAD * random.random())
        self.timer = self.front.loop.call_later(deadline, self._too_slow)

    def data_received(self, data: bytes) -> None:
        if self.complete or self.finished:
            return
        self.buffer += data
        try:
            self._advance()
        except FramingError as exc:
            self.finish(json_error(exc.status, exc.code, exc.message))

    def _advance(self) -> None:
        limits = self.front.settings.limits
        if self.head is None:
            while self.buffer[:2] == b"\r\n":  # blank lines before a request line are allowed
                del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > limits.head:
                    raise FramingError(431, "HEADERS_TOO_LARGE", f"the request head is over {limits.head} bytes")
                if b"\n\n" in self.buffer:  # a head ended by bare LFs would wait for a CRLF until READ_TIMEOUT (408)
                    raise FramingError(400, "BAD_REQUEST", "the request head's lines must end with CRLF (\\r\\n)")
                return
            self.head = parse_head(bytes(self.buffer[:end]), limits)
            del self.buffer[:end + 4]
            if self.head.chunked:
                self.chunked = ChunkedBody(limits.body)
            if self.head.expects_continue and self.head.has_body and not self.buffer:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.chunked is not None:
            self.chunked.feed(self.buffer)
            if not self.chunked.done:
                return
            body = bytes(self.chunked.body)
        else:
            length = self.head.content_length
            if len(self.buffer) < length:
                return
            body = bytes(self.buffer[:length])
        self.complete = True
        self.timer.cancel()
        self.transport.pause_reading()
        self.buffer = bytearray()
        self.front.dispatch(self, self.head, body)

    def eof_received(self) -> bool:
        if not self.complete and not self.finished:
            if self.buffer or self.head is not None:
                self.finish(json_error(400, "BAD_REQUEST", "the request ended before its body did"))
            else:
                self.finish(b"")
        return True  # keep the transport open for the answer being computed

    def _too_slow(self) -> None:
        if not self.complete and not self.finished:
            self.finish(json_error(408, "REQUEST_TIMEOUT", "the request was not read whole within "
                                   f"READ_TIMEOUT_SECONDS={self.front.settings.read_timeout:g}"))

    def finish(self, answer: bytes) -> None:
        """Write ``answer`` (once) and close the connection."""
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None and not self.transport.is_closing():
            if answer:
                self.transport.write(answer)
            self.transport.close()

    def finish_with(self, future: Future) -> None:
        try:
            answer = future.result()
        except BaseException:  # noqa: BLE001 - call_app answers every error itself; this is the pool refusing
            answer = json_error(503, "SHUTTING_DOWN", "the worker is stopping; try again")
        self.finish(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.finished = True
        self.front._closed()
