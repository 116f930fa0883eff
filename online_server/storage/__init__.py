"""Where model and source zips live: ``<root>/<MODEL_NAME>/model/YYYYMMDD.zip`` and
``<root>/<MODEL_NAME>/src/<MODEL_NAME>.zip``, on a local/NAS folder, FTP, or GCS."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Protocol

MODEL_ZIP = re.compile(r"([0-9]{8})\.zip", re.ASCII)


class StorageError(Exception):
    """The storage could not be listed or read."""


class ArchiveTooLargeError(StorageError):
    """The archive in storage is over the configured size limit."""


class Storage(Protocol):
    def list(self, folder: str) -> list[str]:
        """File names (not paths) directly under ``folder`` (relative to the model's root)."""

    def fetch(self, path: str, destination: Path, max_bytes: int) -> None:
        """Copy ``path`` to ``destination``; refuse files over ``max_bytes``."""


def model_zip_date(name: str) -> dt.date | None:
    """The date a ``YYYYMMDD.zip`` name stands for: ASCII digits of a real calendar date, else None."""
    match = MODEL_ZIP.fullmatch(name)
    if match is None:
        return None
    digits = match[1]
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def latest_model_zip(names: list[str]) -> str | None:
    """The newest ``YYYYMMDD.zip`` by the date in its name (not by modification time); other names are ignored."""
    dated = sorted((date, name) for name in names if (date := model_zip_date(name)) is not None)
    return dated[-1][1] if dated else None


def storage_from_settings(settings) -> Storage:
    kind = settings.storage
    if kind == "local":
        from online_server.storage.local import LocalStorage

        return LocalStorage(Path(settings.storage_root) / settings.model_name)
    if kind == "ftp":
        from online_server.storage.ftp import FtpStorage

        return FtpStorage(settings.ftp_host, settings.ftp_port, settings.ftp_user, settings.ftp_password,
                          f"{settings.storage_root.rstrip('/')}/{settings.model_name}",
                          deadline_seconds=settings.download_timeout_seconds)
    if kind == "gcs":
        from online_server.storage.gcs import GcsStorage

        return GcsStorage(settings.gcs_bucket, f"{settings.storage_root.strip('/')}/{settings.model_name}".strip("/"))
    raise StorageError(f"STORAGE {kind!r} is not one of local, ftp, gcs")
