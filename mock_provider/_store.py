"""Stored files: metadata in memory, bytes on disk under the data directory.

Only the event loop thread touches a `FileStore`, so it needs no lock.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file a provider holds."""

    provider: str
    id: str
    filename: str
    purpose: str
    size: int
    created_at: int
    sha256: str
    path: Path
    seq: int  # insertion order: the tie-break when created_at is equal


class FileStore:
    """Files per provider, with the counts the limits need.

    Args:
        data_dir: directory for the bytes; ``tmp/`` holds uploads in flight, ``files/<provider>/`` the
            stored files.
    """

    def __init__(self, data_dir: Path) -> None:
        self._tmp_dir = data_dir / "tmp"
        self._files_dir = data_dir / "files"
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        self._files_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, dict[str, StoredFile]] = {}
        self._seq = 0

    def temp_path(self) -> Path:
        """A fresh, empty file in the data directory for an upload in flight (same filesystem, so the
        final rename is atomic)."""
        fd, name = tempfile.mkstemp(dir=self._tmp_dir, prefix="upload-")
        os.close(fd)
        return Path(name)

    def add(
        self,
        *,
        provider: str,
        file_id: str,
        filename: str,
        purpose: str,
        size: int,
        created_at: int,
        sha256: str,
        temp: Path,
    ) -> StoredFile:
        """Move `temp` into place and record it."""
        directory = self._files_dir / provider
        directory.mkdir(exist_ok=True)
        path = directory / file_id
        temp.replace(path)
        self._seq += 1
        stored = StoredFile(provider, file_id, filename, purpose, size, created_at, sha256, path, self._seq)
        self._files.setdefault(provider, {})[file_id] = stored
        return stored

    def get(self, provider: str, file_id: str) -> StoredFile | None:
        return self._files.get(provider, {}).get(file_id)

    def files(self, provider: str) -> list[StoredFile]:
        """The provider's files, oldest first."""
        return sorted(self._files.get(provider, {}).values(), key=lambda f: f.seq)

    def count(self, provider: str, purpose: str | None = None) -> int:
        held = self._files.get(provider, {}).values()
        return sum(1 for f in held if purpose is None or f.purpose == purpose)

    def total_bytes(self, provider: str) -> int:
        return sum(f.size for f in self._files.get(provider, {}).values())

    def has_id(self, provider: str, file_id: str) -> bool:
        return file_id in self._files.get(provider, {})

    def delete(self, provider: str, file_id: str) -> StoredFile | None:
        stored = self._files.get(provider, {}).pop(file_id, None)
        if stored is not None:
            stored.path.unlink(missing_ok=True)
        return stored

    def clear(self) -> None:
        """Forget every file and remove its bytes (uploads in flight keep their temp files)."""
        for per_provider in self._files.values():
            for stored in per_provider.values():
                stored.path.unlink(missing_ok=True)
        self._files.clear()
