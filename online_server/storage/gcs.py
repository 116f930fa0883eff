"""Google Cloud Storage. ``STORAGE_EMULATOR_HOST`` (the client's own variable) points it at an emulator."""

from __future__ import annotations

from pathlib import Path

from online_server.storage import ArchiveTooLargeError, StorageError


class GcsStorage:
    def __init__(self, bucket: str, prefix: str):
        from google.cloud import storage

        self.bucket = storage.Client().bucket(bucket)
        self.prefix = prefix

    def list(self, folder: str) -> list[str]:
        prefix = f"{self.prefix}/{folder}/".lstrip("/")
        try:
            return sorted(b.name[len(prefix):] for b in self.bucket.list_blobs(prefix=prefix) if "/" not in b.name[len(prefix):])
        except Exception as exc:  # noqa: BLE001 - any client failure is a storage failure
            raise StorageError(f"listing gs://{self.bucket.name}/{prefix} failed: {exc}") from None

    def fetch(self, path: str, destination: Path, max_bytes: int) -> None:
        blob = self.bucket.get_blob(f"{self.prefix}/{path}".lstrip("/"))
        if blob is None:
            raise StorageError(f"gs://{self.bucket.name}/{self.prefix}/{path} does not exist")
        if (blob.size or 0) > max_bytes:
            raise ArchiveTooLargeError(f"{path} is {blob.size} bytes, over the {max_bytes}-byte limit")
        blob.download_to_filename(str(destination))
