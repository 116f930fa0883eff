"""A small TCP proxy that puts real network faults between a client and a local server.

Clients connect to the proxy's port instead of the server's. Until told otherwise it
forwards bytes both ways; a fault can be set now or armed to fire at a chosen step (when
the client sends given bytes, or after the server has sent so many):

``blackhole``
    every connection, open or new, is held open and never answered (a silent server,
    a dropped route);
``refuse``
    open connections are cut and the port stops listening (a server that is down);
``reset``
    open connections are cut; new ones are accepted and cut at once;
``blip``
    open connections are cut; new ones pass (a momentary failure);
``pass``
    forward again (the server is back);
``hold``
    (armed on a request only) forward that request but never its answer, as when the
    server works on it while the network loses the reply; other connections pass.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

MODES = ("pass", "blackhole", "refuse", "reset", "blip")
ARMED_MODES = (*MODES, "hold")


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.triggered = threading.Event()
        self._lock = threading.Lock()
        self._mode = "pass"
        self._marker: bytes | None = None
        self._response_budget: int | None = None
        self._armed_mode = "pass"
        self._fire_after = 0.0
        self._connections: set[socket.socket] = set()
        self._held: set[socket.socket] = set()  # upstream sockets whose answers are dropped
        self._listening = threading.Event()
        self._closed = False
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True).start()

    # -- control ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def fault(self, mode: str) -> None:
        """Apply ``mode`` now to open and new connections."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        with self._lock:
            self._marker = self._response_budget = None
            self._apply(mode)

    def fault_on_request(self, marker: bytes, mode: str) -> None:
        """Apply ``mode`` when a client sends ``marker`` (that request is not forwarded, except with ``hold``)."""
        if mode not in ARMED_MODES:
            raise ValueError(f"mode must be one of {ARMED_MODES}, got {mode!r}")
        with self._lock:
            self.triggered.clear()
            self._marker, self._armed_mode = marker, mode

    def fault_after_response_bytes(self, count: int, mode: str, *, after_seconds: float = 0.0) -> None:
        """Apply ``mode`` once the server has sent ``count`` more bytes to clients.

        With ``after_seconds``, nothing more is forwarded from then on, and ``mode`` is applied
        that much later: the client has time to take in what it received before the fault
        lands (a connection reset makes gRPC drop a message it received but was not yet asked for).
        """
        with self._lock:
            self.triggered.clear()
            self._response_budget, self._armed_mode, self._fire_after = count, mode, after_seconds

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._apply("refuse")

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------
    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        self._listening.set()
        return listener

    def _apply(self, mode: str) -> None:  # with self._lock held
        self._mode = "pass" if mode == "blip" else mode
        if mode in ("refuse", "reset", "blip"):
            for conn in list(self._connections):
                _cut(conn)
            self._connections.clear()
        if mode == "refuse" and self._listening.is_set():
            self._listening.clear()
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        if mode != "refuse" and not self._listening.is_set() and not self._closed:
            self._listener = self._listen(self.port)

    def _fire(self) -> None:  # with self._lock held
        self._marker = self._response_budget = None
        self._apply(self._armed_mode)
        self.triggered.set()

    def _fire_now(self) -> None:
        with self._lock:
            self._fire()

    def _accept_loop(self) -> None:
        while not self._closed:
            if not self._listening.wait(0.1):
                continue
            listener = self._listener
            try:
                client, _ = listener.accept()
            except OSError:
                continue
            with self._lock:
                mode = self._mode
            if mode == "reset" or mode == "refuse":
                _cut(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _cut(client)
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for source, sink, upward in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, upward, upstream), name="faultproxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upward: bool, upstream: socket.socket) -> None:
        tail = b""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    held = not upward and source in self._held
                if not held:  # a held answer stays pending: the client sees neither reply nor close
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                return
            with self._lock:
                if upward and self._marker is not None and self._marker in tail + data:
                    if self._armed_mode == "hold":
                        self._held.add(upstream)
                        self._marker = None
                        self.triggered.set()
                    else:
                        self._fire()
                        data = b""
                elif not upward and self._response_budget is not None:
                    if len(data) >= self._response_budget:
                        data = data[: self._response_budget]
                        forward_then_fire = True
                    else:
                        self._response_budget -= len(data)
                        forward_then_fire = False
                    if forward_then_fire:
                        with contextlib.suppress(OSError):
                            sink.sendall(data)
                        if self._fire_after:
                            self._response_budget, self._mode = None, "blackhole"
                            threading.Timer(self._fire_after, self._fire_now).start()
                        else:
                            self._fire()
                        data = b""
                if upward:
                    tail = (tail + data)[-256:]
                silent = self._mode == "blackhole" or (not upward and source in self._held)
                alive = source in self._connections
            if not alive:
                return
            if silent or not data:
                continue
            try:
                sink.sendall(data)
            except OSError:
                return


def _cut(sock: socket.socket) -> None:
    """Close ``sock`` with a reset, waking any thread blocked on it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
