"""A per-host cache of downloaded model versions: downloaded once, shared by every task on the host.

Why: every task used to download its model version into a fresh temporary folder (and
leave it behind). A registered version's files never change, so one copy per host serves
every task and every retry; a day's shards on one worker download it once.

How it stays safe with many task processes on one host:

* a version's folder appears whole or not at all: it is downloaded into a private
  temporary folder next to it and renamed into place (one ``rename``, atomic on one
  file system), with a ``.complete`` marker holding its size written before the rename;
  a folder whose files no longer add up to that size (truncated, a file removed) is not
  served: it is downloaded again;
* processes wanting the same missing version take its download lock (``<entry>.dl``)
  exclusively in turn: the first downloads, the others see it complete -- they look while
  they wait, so a waiter never outlasts the download;
* a process using a version holds its use lock (``<entry>.lock``) shared for as long as it
  lives (a model may read its files after loading), and eviction only removes versions
  whose use lock it can take exclusively at once: a version in use is never removed under
  a running task;
* the cache is bounded (``max_bytes``); past it, the least recently used versions go
  first; a download that finds the disk full evicts every unused version and tries once
  more; a download folder whose process died (its download lock is free) is removed by the
  next eviction;
* a cache folder this process cannot write (another user's, read-only, a file in its place)
  is ``ModelCacheUnusableError``: the caller downloads into a temporary folder instead.

Settings (Airflow configuration, so ``AIRFLOW__SOMLIER__MODEL_CACHE_DIR`` works too):
``[somlier] model_cache_dir`` (default ``~/.cache/somlier/models``) and
``[somlier] model_cache_max_gb`` (default 10; ``0`` turns the cache off: each task then
downloads into a temporary folder it removes at exit).
"""

from __future__ import annotations

import contextlib
import errno
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
_TRASH_PREFIX = ".evicted-"
_STALE_TRASH_SECONDS = 3600  # an evicted folder still here after this lost its deleting process
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ModelCacheUnusableError(OSError):
    """The cache folder cannot hold a version for this process (permissions, read-only, not a folder)."""


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
    max_bytes = max_gb * 1024**3
    if not 0 <= max_bytes < float("inf") or (max_gb > 0 and max_bytes < 1):
        raise InvalidArgumentError(
            f"[somlier] model_cache_max_gb is {raw!r}; expected a number of GB >= 0 that a disk can hold "
            "(0 turns the cache off)"
        )
    return Path(folder).expanduser(), int(max_bytes)


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
        ``ModelCacheUnusableError`` when this process cannot use the cache folder at all.
        """
        final = self.root / entry
        use_fd = self._open_lock(f"{entry}.lock", writable_needed=False)
        try:
            fcntl.flock(use_fd, fcntl.LOCK_SH)  # kept while this process lives: eviction passes it by
            downloaded = False
            if not self._complete(final):
                downloaded = self._fetch(final, download, wait_seconds)
            self._touch(final)
            path = self._model_path(final)
        except BaseException:
            os.close(use_fd)
            raise
        if downloaded:
            self.evict(keep=entry)
        return CachedVersion(path, downloaded, use_fd)

    def discard(self, entry: str) -> None:
        """Take ``entry`` out of view (its files failed to load): the next ``get`` downloads it again.

        Processes already using it keep their open files; it is renamed away, then deleted.
        """
        with contextlib.suppress(FileNotFoundError):
            self._trash(self.root / entry)

    def _open_lock(self, name: str, *, writable_needed: bool = True) -> int:
        """A lock file's descriptor (created readable and writable by whoever may share the cache)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                return os.open(self.root / name, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                if writable_needed or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                return os.open(self.root / name, os.O_RDONLY)  # another user's or a read-only cache: reading will do
        except OSError as exc:
            raise ModelCacheUnusableError(
                exc.errno, f"the model cache at {self.root} cannot be used by this process: {exc.strerror}",
                str(exc.filename or self.root),
            ) from exc

    def _fetch(self, final: Path, download: Callable[[Path], Path], wait_seconds: float) -> bool:
        """Download ``final`` under its download lock unless another process completes it first."""
        dl_fd = self._open_lock(f"{final.name}.dl")
        try:
            if not self._lock_download(dl_fd, final, wait_seconds):
                return False  # completed by the process we waited for
            if self._complete(final):
                return False
            if final.exists():  # incomplete or damaged: never served; out of the way first
                self._trash(final)
            try:
                self._download(final, download)
            except Exception as exc:
                if not _disk_full(exc):
                    raise
                freed = self.evict(keep=final.name, target_bytes=0)
                if not freed:
                    raise
                self._download(final, download)  # once more, with every unused version gone
            return True
        finally:
            os.close(dl_fd)  # releases the download lock

    def _lock_download(self, dl_fd: int, final: Path, wait_seconds: float) -> bool:
        """True once the download lock is ours; False as soon as the version is complete (waiting no more)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(dl_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if self._complete(final):
                    return False
                if time.monotonic() > deadline:
                    from airflow_provider_somlier.errors import RegistryUnavailableError

                    raise RegistryUnavailableError(
                        f"another process has been downloading model {final.name} for more than {wait_seconds:g} s "
                        "(download_timeout_seconds of the mlflow connection); retry the task"
                    ) from None
                time.sleep(0.1)

    @staticmethod
    def _complete(final: Path) -> bool:
        """The folder is whole: its marker is there and its files add up to the size it records."""
        try:
            recorded = int((final / _COMPLETE).read_text() or -1)
            return _folder_bytes(final) == recorded
        except (OSError, ValueError):  # no marker, or the folder taken away while it was counted
            return False

    def _download(self, final: Path, download: Callable[[Path], Path]) -> None:
        temp = self.root / f"{_TEMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            model_path = Path(download(temp))
            (temp / ".model-path").write_text(os.path.relpath(model_path, temp))
            (temp / _COMPLETE).write_text(str(_folder_bytes(temp)))
            os.rename(temp, final)
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    def _trash(self, folder: Path) -> None:
        trash = self.root / f"{_TRASH_PREFIX}{folder.name}-{uuid.uuid4().hex[:8]}"
        os.rename(folder, trash)  # gone from view at once, deleted after
        shutil.rmtree(trash, ignore_errors=True)

    @staticmethod
    def _model_path(final: Path) -> Path:
        return (final / (final / ".model-path").read_text()).resolve()

    @staticmethod
    def _touch(final: Path) -> None:
        with contextlib.suppress(OSError):
            os.utime(final / _COMPLETE)

    def evict(self, keep: str = "", target_bytes: int | None = None) -> list[str]:
        """Remove least recently used versions until the cache holds at most ``target_bytes`` (default:
        its limit); never one in use, never ``keep``. Returns their names."""
        target = self.max_bytes if target_bytes is None else target_bytes
        entries = []
        for marker in self.root.glob(f"*/{_COMPLETE}"):
            folder = marker.parent
            if folder.name.startswith("."):  # a download or an evicted folder, not an entry
                continue
            with contextlib.suppress(OSError, ValueError):
                entries.append((marker.stat().st_mtime, int(marker.read_text() or 0), folder.name))
        self._drop_abandoned()
        total = sum(size for _, size, _ in entries)
        removed = []
        for _, size, name in sorted(entries):
            if total <= target:
                break
            if name == keep:
                continue
            if self._remove_unused(name):
                total -= size
                removed.append(name)
        return removed

    def _remove_unused(self, name: str) -> bool:
        try:
            lock_fd = os.open(self.root / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            return False  # another user's version: theirs to evict
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a task is using it
            self._trash(self.root / name)
            return True
        except OSError:
            return False
        finally:
            os.close(lock_fd)

    def _drop_abandoned(self) -> None:
        """Remove download folders whose process died (their version's download lock is free) and
        evicted folders whose deleting process died."""
        for folder in self.root.glob(f"{_TEMP_PREFIX}*"):
            entry = folder.name[len(_TEMP_PREFIX):].rpartition("-")[0]
            with contextlib.suppress(OSError):
                dl_fd = os.open(self.root / f"{entry}.dl", os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(dl_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: still downloading
                    shutil.rmtree(folder, ignore_errors=True)
                finally:
                    os.close(dl_fd)
        cutoff = time.time() - _STALE_TRASH_SECONDS
        for folder in self.root.glob(f"{_TRASH_PREFIX}*"):
            with contextlib.suppress(OSError):
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is the disk running out of space."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _folder_bytes(folder: Path) -> int:
    """The bytes of a version's files (its ``.complete`` marker apart, which records them)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and f != folder / _COMPLETE)
