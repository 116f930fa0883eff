"""A local folder or a NAS mount."""

from __future__ import annotations

import shutil
from pathlib import Path

from online_server.storage import ArchiveTooLargeError, StorageError


class LocalStorage:
    def __init__(self, root: Path):
        self.root = root

    def list(self, folder: str) -> list[str]:
        path = self.root / folder
        if not path.is_dir():
            return []
        return sorted(p.name for p in path.iterdir() if p.is_file())

    def fetch(self, path: str, destination: Path, max_bytes: int) -> None:
        source = self.root / path
        if not source.is_file():
            raise StorageError(f"{source} does not exist")
        if source.stat().st_size > max_bytes:
            raise ArchiveTooLargeError(f"{path} is {source.stat().st_size} bytes, over the {max_bytes}-byte limit")
        shutil.copyfile(source, destination)
