"""Unpack archives safely and switch the serving version atomically across worker processes.

Layout under ``WORK_DIR``::

    src/<stamp>/...        unpacked source zips, one fresh folder per download
    model/<stamp>/...      unpacked model zips
    current.json           {"model_name": "...", "src": "...", "model": "...", "version": "..."};
                           replaced with rename(2)

A download unpacks into a fresh folder, loads and smoke-tests the model there, and
only then replaces ``current.json``. Every worker compares the pointer's identity
(inode + mtime) before each request and reloads when it changed, so after a switch a
worker answers from the old version until its next request, and from the new one
after: never a mix, never a half-unpacked folder.

The pointer names the model it is for, and a server serves only its own model's pointer:
two servers given one WORK_DIR would otherwise serve each other's model (and prune each
other's folders). A pointer written before the name was recorded is this model's only in
the model's default work dir, whose path has the name in it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from online_server.models import ModelLoadError
from online_server.settings import WORK_ROOT


class UnsafeArchiveError(Exception):
    """A zip that cannot be unpacked safely: not a zip, an entry escaping its folder or a link,
    too big, encrypted, an unsupported compression, clashing or over-long names, corrupt data."""


SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                         zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
MAX_NAME_BYTES = 255  # one path component, as Linux file systems allow


def check_members(archive_name: str, members: list[zipfile.ZipInfo], *, max_bytes: int, max_files: int) -> None:
    """Refuse the archive, naming the entry, before anything is written."""
    if len(members) > max_files:
        raise UnsafeArchiveError(f"{archive_name} has {len(members)} entries (limit {max_files})")
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise UnsafeArchiveError(f"{archive_name} unpacks to {total} bytes (limit {max_bytes})")
    files, folders = set(), set()
    for member in members:
        name = member.filename
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or ":" in name.split("/")[0]:
            raise UnsafeArchiveError(f"{archive_name}: entry {name!r} escapes the target folder")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UnsafeArchiveError(f"{archive_name}: entry {name!r} is a symbolic link")
        if member.flag_bits & 0x1:
            raise UnsafeArchiveError(f"{archive_name}: entry {name!r} is encrypted; zip it without a password")
        if member.compress_type not in SUPPORTED_COMPRESSION:
            raise UnsafeArchiveError(
                f"{archive_name}: entry {name!r} uses compression method {member.compress_type}; "
                f"use one of {sorted(SUPPORTED_COMPRESSION.values())}"
            )
        if any(len(part.encode()) > MAX_NAME_BYTES for part in parts):
            raise UnsafeArchiveError(f"{archive_name}: entry {name[:60]!r}... has a name over {MAX_NAME_BYTES} bytes")
        folders.update(str(Path(*parts[:i])) for i in range(1, len(parts)))
        if member.is_dir():
            folders.add(str(Path(*parts)))
        else:
            if str(Path(*parts)) in files:  # the last copy would silently win: which one was meant?
                raise UnsafeArchiveError(f"{archive_name}: entry {name!r} is in the archive twice")
            files.add(str(Path(*parts)))
    clash = sorted(files & folders)
    if clash:
        raise UnsafeArchiveError(f"{archive_name}: {clash[0]!r} is both a file and a folder")


def unpack(archive: Path, target_parent: Path, *, max_bytes: int, max_files: int = 10_000) -> Path:
    """Extract ``archive`` into a new folder under ``target_parent`` and return it.

    Refuses (``UnsafeArchiveError``) what ``check_members`` refuses before writing anything,
    and any failure while extracting (corrupt data, a bad checksum) after deleting the
    partial folder: a refused archive leaves nothing behind.
    """
    target_parent.mkdir(parents=True, exist_ok=True)
    try:
        zipped = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise UnsafeArchiveError(f"{archive.name} is not a zip archive: {exc}") from None
    with zipped:
        members = zipped.infolist()
        check_members(archive.name, members, max_bytes=max_bytes, max_files=max_files)
        folder = Path(tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%d%H%M%S')}-", dir=target_parent))
        try:
            zipped.extractall(folder)
        except Exception as exc:  # noqa: BLE001 - zlib, lzma, bz2, zipfile and OS errors alike mean "refused"
            shutil.rmtree(folder, ignore_errors=True)
            raise UnsafeArchiveError(f"{archive.name} cannot be unpacked: {type(exc).__name__}: {exc}") from None
    return folder


def prune(parent: Path, keep: set[str | None]) -> None:
    """Delete every unpacked folder under ``parent`` but those in ``keep`` (the current and the previous)."""
    kept = {Path(path).resolve() for path in keep if path}
    if not parent.is_dir():
        return
    for child in parent.iterdir():
        if child.is_dir() and child.resolve() not in kept:
            shutil.rmtree(child, ignore_errors=True)


@dataclass(frozen=True)
class Current:
    src: str | None
    model: str | None
    version: str | None


class ForeignPointerError(ModelLoadError):
    """``current.json`` names another model: this server shares its WORK_DIR with another model's server."""


class UnnamedPointerError(ForeignPointerError):
    """``current.json`` names no model (an older server wrote it) outside this model's default work dir."""


class Pointer:
    """``current.json`` in the work dir: which unpacked source and model are serving, and for which model."""

    def __init__(self, work_dir: Path, model_name: str, *, adopt_unnamed: bool = False):
        """``adopt_unnamed``: a pointer that names no model is this model's (``work_dir`` is the model's own)."""
        self.path = work_dir / "current.json"
        self.model_name = model_name
        self.adopt_unnamed = adopt_unnamed

    def read(self) -> Current:
        """The current version; ForeignPointerError when the pointer is not this model's (nothing of it is served)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return Current(None, None, None)
        self.check_owner(data.get("model_name"))
        return Current(data.get("src"), data.get("model"), data.get("version"))

    @classmethod
    def of(cls, settings) -> Pointer:
        """The pointer in ``settings.work_dir`` for ``settings.model_name``."""
        return cls(Path(settings.work_dir), settings.model_name, adopt_unnamed=settings.own_work_dir)

    def check_owner(self, owner: str | None) -> None:
        """Nothing when a pointer naming ``owner`` is this model's, else ForeignPointerError naming both models."""
        if owner == self.model_name or (owner is None and self.adopt_unnamed):
            return
        if owner is None:
            raise UnnamedPointerError(
                f"{self.path} names no model (an older server wrote it) and WORK_DIR is not this model's own folder, "
                f"so it may be another model's: not serving it for MODEL_NAME={self.model_name!r}; "
                "/src_download and /model_download replace it"
            )
        raise ForeignPointerError(
            f"{self.path} is MODEL_NAME={owner!r}'s, not this server's MODEL_NAME={self.model_name!r}: "
            f"two models share this WORK_DIR; give each its own (unset, WORK_DIR is {WORK_ROOT}/<MODEL_NAME>), "
            "or remove the file if that model is no longer served from here"
        )

    def identity(self) -> tuple[int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns)

    def write(self, current: Current) -> None:
        """Replace the pointer in one rename: readers see the old or the new file, never a partial one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=self.path.parent, prefix=".current-")
        with os.fdopen(fd, "w") as out:
            json.dump({"model_name": self.model_name, "src": current.src, "model": current.model,
                       "version": current.version}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)


def refuse_foreign_pointer(settings) -> None:
    """At start: ForeignPointerError when WORK_DIR already holds another model's pointer.

    Two servers sharing a WORK_DIR is a setting to fix, not something to serve around. A
    pointer naming no model does not stop the start: its server answers 503 naming it until
    a download replaces it.
    """
    try:
        Pointer.of(settings).read()
    except UnnamedPointerError:
        pass
