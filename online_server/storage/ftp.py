"""An FTP server (credentials from the environment, never logged)."""

from __future__ import annotations

import ftplib
from pathlib import Path

from online_server.storage import ArchiveTooLargeError, StorageError


class FtpStorage:
    def __init__(self, host: str, port: int, user: str, password: str, root: str):
        self.host, self.port, self.user, self.password, self.root = host, port, user, password, root

    def _connect(self) -> ftplib.FTP:
        try:
            ftp = ftplib.FTP()
            ftp.connect(self.host, self.port, timeout=30)
            ftp.login(self.user, self.password)
            return ftp
        except (OSError, ftplib.Error) as exc:
            raise StorageError(f"FTP {self.host}:{self.port} failed: {type(exc).__name__}: {exc}") from None

    def list(self, folder: str) -> list[str]:
        with self._connect() as ftp:
            try:
                return sorted(name.rsplit("/", 1)[-1] for name in ftp.nlst(f"{self.root}/{folder}"))
            except ftplib.error_perm:
                return []

    def fetch(self, path: str, destination: Path, max_bytes: int) -> None:
        received = 0
        with self._connect() as ftp, open(destination, "wb") as out:
            def write(block: bytes) -> None:
                nonlocal received
                received += len(block)
                if received > max_bytes:
                    raise ArchiveTooLargeError(f"{path} is over the {max_bytes}-byte limit")
                out.write(block)

            try:
                ftp.retrbinary(f"RETR {self.root}/{path}", write)
            except ftplib.error_perm as exc:
                raise StorageError(f"FTP cannot read {path}: {exc}") from None
