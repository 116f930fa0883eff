"""An FTP server (credentials from the environment, never logged).

Every exchange with the server runs under one deadline (``deadline_seconds``, the
server's ``DOWNLOAD_TIMEOUT_SECONDS``): a watchdog closes the connection when it passes,
so a server that trickles a byte every few seconds — each read within the socket's own
timeout, the transfer never ending — fails the download instead of holding it, and its
lock, for good. Anything the server or the network does wrong is a ``StorageError``
(the route's ``502 STORAGE_ERROR``), never a raw ``ftplib``/socket error.
"""

from __future__ import annotations

import contextlib
import ftplib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from online_server.storage import ArchiveTooLargeError, StorageError

SOCKET_TIMEOUT_SECONDS = 30.0


class FtpStorage:
    def __init__(self, host: str, port: int, user: str, password: str, root: str, deadline_seconds: float = 300.0):
        self.host, self.port, self.user, self.password, self.root = host, port, user, password, root
        self.deadline_seconds = deadline_seconds

    @contextlib.contextmanager
    def _session(self, what: str) -> Iterator[ftplib.FTP]:
        """A logged-in connection for ``what``, closed by a watchdog at the deadline; failures named."""
        ftp = ftplib.FTP()
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(OSError, AttributeError):  # shut down, not closed: the session's own
                ftp.sock.shutdown(socket.SHUT_RDWR)  # thread closes it; a blocked read wakes at once

        watchdog = threading.Timer(self.deadline_seconds, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            ftp.connect(self.host, self.port, timeout=min(SOCKET_TIMEOUT_SECONDS, self.deadline_seconds))
            ftp.login(self.user, self.password)
            yield ftp
        except (StorageError, ArchiveTooLargeError):
            raise
        except (OSError, EOFError, ftplib.Error) as exc:
            if expired.is_set():
                raise StorageError(
                    f"FTP {self.host}:{self.port}: {what} did not end within DOWNLOAD_TIMEOUT_SECONDS="
                    f"{self.deadline_seconds:g}; the previous model keeps serving"
                ) from None
            raise StorageError(f"FTP {self.host}:{self.port}: {what} failed: {type(exc).__name__}: {exc}") from None
        finally:
            watchdog.cancel()
            with contextlib.suppress(OSError, ftplib.Error, EOFError):
                ftp.close()

    def list(self, folder: str) -> list[str]:
        """The files (not folders) in ``folder``; none when it does not exist."""
        with self._session(f"listing {folder}/") as ftp:
            path = f"{self.root}/{folder}"
            try:
                return sorted(name for name, facts in ftp.mlsd(path, facts=["type"]) if facts.get("type") == "file")
            except ftplib.error_perm as exc:
                if not str(exc).startswith(("500", "501", "502", "504")):  # MLSD understood: the folder is missing
                    return []
            try:  # a server without MLSD: names only (a folder named like a zip fails its fetch by name)
                return sorted(name.rsplit("/", 1)[-1] for name in ftp.nlst(path))
            except ftplib.error_perm:
                return []

    def fetch(self, path: str, destination: Path, max_bytes: int) -> None:
        received = 0
        # The data arrives on a connection of its own, which the watchdog does not reach: a transfer
        # that trickles is ended here, at the next block past the deadline.
        deadline = time.monotonic() + self.deadline_seconds
        with self._session(f"download of {path}") as ftp, open(destination, "wb") as out:
            def write(block: bytes) -> None:
                nonlocal received
                received += len(block)
                if received > max_bytes:
                    raise ArchiveTooLargeError(f"{path} is over the {max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise StorageError(
                        f"FTP {self.host}:{self.port}: download of {path} did not end within "
                        f"DOWNLOAD_TIMEOUT_SECONDS={self.deadline_seconds:g} ({received} bytes received); "
                        "the previous model keeps serving"
                    )
                out.write(block)

            try:
                ftp.retrbinary(f"RETR {self.root}/{path}", write)
            except ftplib.error_perm as exc:
                raise StorageError(f"FTP cannot read {path}: {exc}") from None
