"""Unpack archives safely and switch the serving version atomically across worker processes.

Layout under ``WORK_DIR``::

    src/<stamp>/...        unpacked source zips, one fresh folder per download
    model/<stamp>/...      unpacked model zips
    current.json           {"src": "...", "model": "...", "version": "..."}; replaced with rename(2)

A download unpacks into a fresh folder, loads and smoke-tests the model there, and
only then replaces ``current.json``. Every worker compares the pointer's identity
(inode + mtime) before each request and reloads when it changed, so after a switch a
worker answers from the old version until its next request, and from the new one
after: never a mix, never a half-unpacked folder.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path


class UnsafeArchiveError(Exception):
    """A zip entry escapes its folder, is a link, or the archive is too big."""


def unpack(archive: Path, target_parent: Path, *, max_bytes: int, max_files: int = 10_000) -> Path:
    """Extract ``archive`` into a new folder under ``target_parent`` and return it.

    Refuses absolute paths, ``..`` components, symlinks and archives whose entries add
    up to more than ``max_bytes`` (checked before writing anything).
    """
    target_parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            if len(members) > max_files:
                raise UnsafeArchiveError(f"{archive.name} has {len(members)} entries (limit {max_files})")
            total = sum(m.file_size for m in members)
            if total > max_bytes:
                raise UnsafeArchiveError(f"{archive.name} unpacks to {total} bytes (limit {max_bytes})")
            for member in members:
                name = member.filename
                mode = member.external_attr >> 16
                if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name.split("/")[0]:
                    raise UnsafeArchiveError(f"{archive.name}: entry {name!r} escapes the target folder")
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError(f"{archive.name}: entry {name!r} is a symbolic link")
            folder = Path(tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%d%H%M%S')}-", dir=target_parent))
            zipped.extractall(folder)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchiveError(f"{archive.name} is not a zip archive: {exc}") from None
    return folder


@dataclass(frozen=True)
class Current:
    src: str | None
    model: str | None
    version: str | None


class Pointer:
    """``current.json`` in the work dir: which unpacked source and model are serving."""

    def __init__(self, work_dir: Path):
        self.path = work_dir / "current.json"

    def read(self) -> Current:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return Current(None, None, None)
        return Current(data.get("src"), data.get("model"), data.get("version"))

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
            json.dump({"src": current.src, "model": current.model, "version": current.version}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)
