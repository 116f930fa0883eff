"""A per-host cache of downloaded model versions: downloaded once, shared by every task on the host.

Why: every task used to download its model version into a fresh temporary folder (and
leave it behind). A registered version's files never change, so one copy per host serves
every task and every retry; a day's shards on one worker download it once.

How it stays safe with many task processes on one host:

* a version's folder appears whole or not at all: it is downloaded into a private
  temporary folder next to it and renamed into place (one ``rename``, atomic on one
  file system), with a ``.complete`` marker written before the rename;
* processes wanting the same missing version take its lock file exclusively in turn: the
  first downloads, the others find it complete;
* a process using a version holds its lock shared for as long as it lives (a model may
  read its files after loading), and eviction only removes versions whose lock it can take
  exclusively at once: a version in use is never removed under a running task;
* the cache is bounded (``max_bytes``); past it, the least recently used versions go first.

Settings (Airflow configuration, so ``AIRFLOW__SOMLIER__MODEL_CACHE_DIR`` works too):
``[somlier] model_cache_dir`` (default ``~/.cache/somlier/models``) and
``[somlier] model_cache_max_gb`` (default 10; ``0`` turns the cache off: each task then
downloads into a temporary folder it removes at exit).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_somlier.errors import InvalidArgumentError

DEFAULT_MAX_GB = 10.0
_COMPLETE = ".complete"
_TEMP_PREFIX = ".download-"
_STALE_TEMP_SECONDS = 24 * 3600  # a download folder this old belongs to a process that died
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CachedVersion:
    """A version's files on this host, and the open lock that keeps them there while this process lives."""

    path: Path
    downloaded: bool  # False when it was already in the cache
    lock_fd: int


def cache_settings() -> tuple[Path, int]:
    """(folder, max bytes) from the Airflow configuration; a bad value is refused by name."""
    from airflow.configuration import conf

    folder = conf.get("somlier", "model_cache_dir", fallback="") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "somlier", "models"
    )
    raw = conf.get("somlier", "model_cache_max_gb", fallback=str(DEFAULT_MAX_GB))
    try:
        max_gb = float(raw)
    except ValueError:
        max_gb = -1.0
    if not max_gb >= 0 or max_gb == float("inf"):
        raise InvalidArgumentError(
            f"[somlier] model_cache_max_gb is {raw!r}; expected a number of GB >= 0 (0 turns the cache off)"
        )
    return Path(folder).expanduser(), int(max_gb * 1024**3)


class ModelCache:
    """Model versions' files under ``root``, at most ``max_bytes`` of them (see the module's notes)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def entry_name(self, *, registry_uri: str, name: str, version: str, source: str) -> str:
        """The folder of one version: readable, and unique to its registry and source."""
        digest = hashlib.sha256("\0".join((registry_uri, name, version, source)).encode()).hexdigest()[:16]
        readable = _UNSAFE.sub("_", name).lstrip(".")[:80] or "model"  # never hidden, never a path
        return f"{readable}-v{_UNSAFE.sub('_', version)[:20]}-{digest}"

    def get(self, entry: str, download: Callable[[Path], Path], *, wait_seconds: float) -> CachedVersion:
        """The version's folder, downloaded with ``download(folder) -> model path`` if it is not here yet.

        ``wait_seconds`` bounds the wait for another process downloading the same version.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / entry
        lock_fd = os.open(self.root / f"{entry}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_SH)
            if (final / _COMPLETE).exists():
                self._touch(final)
                return CachedVersion(self._model_path(final), False, lock_fd)
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            self._lock_exclusive(lock_fd, entry, wait_seconds)
            downloaded = False
            if not (final / _COMPLETE).exists():  # nobody finished it while we waited
                self._download(final, download)
                downloaded = True
            fcntl.flock(lock_fd, fcntl.LOCK_SH)  # keep it while this process uses it
            self._touch(final)
        except BaseException:
            os.close(lock_fd)
            raise
        if downloaded:
            self.evict(keep=entry)
        return CachedVersion(self._model_path(final), downloaded, lock_fd)

    def _download(self, final: Path, download: Callable[[Path], Path]) -> None:
        temp = self.root / f"{_TEMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            model_path = Path(download(temp))
            (temp / ".model-path").write_text(os.path.relpath(model_path, temp))
            (temp / _COMPLETE).write_text(str(_folder_bytes(temp)))
            if final.exists():  # an incomplete folder: a crash between two renames cannot leave one, but be sure
                shutil.rmtree(final)
            os.rename(temp, final)
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    @staticmethod
    def _model_path(final: Path) -> Path:
        return (final / (final / ".model-path").read_text()).resolve()

    @staticmethod
    def _touch(final: Path) -> None:
        with contextlib.suppress(OSError):
            os.utime(final / _COMPLETE)

    @staticmethod
    def _lock_exclusive(lock_fd: int, entry: str, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    from airflow_provider_somlier.errors import RegistryUnavailableError

                    raise RegistryUnavailableError(
                        f"another process has been downloading model {entry} for more than {wait_seconds:g} s "
                        "(download_timeout_seconds of the mlflow connection); retry the task"
                    ) from None
                time.sleep(0.1)

    def evict(self, keep: str = "") -> list[str]:
        """Remove least recently used versions until the cache fits; never one in use. Returns their names."""
        entries = []
        for marker in self.root.glob(f"*/{_COMPLETE}"):
            folder = marker.parent
            with contextlib.suppress(OSError, ValueError):
                entries.append((marker.stat().st_mtime, int(marker.read_text() or 0), folder.name))
        self._drop_stale_downloads()
        total = sum(size for _, size, _ in entries)
        removed = []
        for _, size, name in sorted(entries):
            if total <= self.max_bytes:
                break
            if name == keep:
                continue
            if self._remove_unused(name):
                total -= size
                removed.append(name)
        return removed

    def _remove_unused(self, name: str) -> bool:
        lock_fd = os.open(self.root / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a task is using it
            trash = self.root / f"{_TEMP_PREFIX}evicted-{name}-{uuid.uuid4().hex[:8]}"
            os.rename(self.root / name, trash)  # gone from view at once, deleted after
            shutil.rmtree(trash, ignore_errors=True)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(lock_fd)

    def _drop_stale_downloads(self) -> None:
        cutoff = time.time() - _STALE_TEMP_SECONDS
        for folder in self.root.glob(f"{_TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
