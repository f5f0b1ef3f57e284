"""The values transfers return: provider file objects, upload results, files found after a lost answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from llmfiles._errors import TransportError
from llmfiles.transfer._local import file_sha256

Progress = Callable[[int, int | None], None]
"""A progress callback: ``(bytes done, total bytes or None when unknown)``."""


_ADOPT_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileObject:
    """A file as the provider describes it (both providers share this shape)."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileObject:
        """Build from the provider's JSON; a body without the fields is an untrustworthy answer.

        Raises:
            TransportError: the body lacks ``id``/``bytes``/``created_at``/``filename``/``purpose`` or
                they have the wrong type (a malformed response: we cannot tell what was stored).
        """
        try:
            file_id, size, created = data["id"], data["bytes"], data["created_at"]
            filename, purpose = data["filename"], data["purpose"]
        except (KeyError, TypeError) as exc:
            raise TransportError(
                f"the provider's file object lacks field {exc!s}; the answer is malformed, retry the call"
            ) from exc
        if not (
            isinstance(file_id, str)
            and isinstance(size, int)
            and isinstance(created, int | float)
            and isinstance(filename, str)
            and isinstance(purpose, str)
        ):
            raise TransportError(f"the provider's file object has fields of the wrong type: id={file_id!r}")
        status = data.get("status")
        return cls(
            id=file_id,
            bytes=size,
            created_at=int(created),
            filename=filename,
            purpose=purpose,
            status=status if isinstance(status, str) else None,
        )


class Obtained(StrEnum):
    """How an upload's provider file was obtained."""

    SENT = "sent"
    """The provider answered our upload with this file."""
    RECONCILED_VERIFIED = "reconciled-verified"
    """The answer was lost; the file was found in the listing and its content hashed to our SHA-256."""
    RECONCILED_UNVERIFIED = "reconciled-unverified"
    """The answer was lost; the file was found in the listing, but the provider does not serve its bytes
    (Kimi ``file-extract``: ``/content`` is the extracted text), so only name, size, purpose and time
    match: it was the one candidate, created after our first send began, with no other upload of that
    name and size in flight in this process. Another process uploading a file of the same name and size
    at the same moment can still make this the wrong file."""


@dataclass(frozen=True, slots=True)
class FoundUpload:
    """A provider file that ``AsyncFilesClient.find_uploaded`` proved to be an upload whose answer was lost.

    Args:
        file: the provider's file object.
        obtained: how it was proven: `Obtained.RECONCILED_VERIFIED` when its ``/content`` hashed to the
            SHA-256 given to ``find_uploaded``; `Obtained.RECONCILED_UNVERIFIED` when only name, size,
            purpose and time match (no SHA-256 given, or the provider does not serve the stored bytes).
    """

    file: FileObject
    obtained: Obtained


@dataclass(frozen=True, slots=True)
class UploadResult:
    """What an upload produced.

    Args:
        file: the provider's file object.
        sha256: hex SHA-256 of the bytes read from disk and sent.
        size: bytes sent (the file's size).
        attempts: HTTP attempts made (1 when the first one succeeded).
        obtained: how the file was obtained: answered by the provider, or found in the listing after
            a lost answer with or without a content check (see `Obtained`).
    """

    file: FileObject
    sha256: str
    size: int
    attempts: int
    obtained: Obtained = Obtained.SENT

    @property
    def reconciled(self) -> bool:
        """True when a lost answer was recovered from the listing instead of sending the file again."""
        return self.obtained is not Obtained.SENT

    @property
    def verified(self) -> bool:
        """True unless the file was adopted without a content check (`Obtained.RECONCILED_UNVERIFIED`)."""
        return self.obtained is not Obtained.RECONCILED_UNVERIFIED

    @classmethod
    def adopted(cls, found: FoundUpload, path: Path, *, sha256: str | None = None) -> UploadResult:
        """The caller's result for `found`, the file ``find_uploaded`` proved after the answer was lost.

        This is the ``adopt`` a rollout `Dispatcher` needs beside ``find_uploaded``. The label is what
        ``find_uploaded`` proved (`FoundUpload.obtained`), never a guess made here. `sha256` is the digest
        of `path` the caller already has: the one it gave ``find_uploaded``, which a verified `found`
        holds exactly (the dispatcher passes it, so the file is read once). Without it the local file is
        hashed, since the lost attempt's running hash died with it: that reads the whole file, so on an
        event loop call it from a worker thread for anything but small files.

        Args:
            found: what ``find_uploaded`` returned.
            path: the local file whose upload's answer was lost.
            sha256: hex SHA-256 of `path`, as given to ``find_uploaded``; None to compute it.

        Raises:
            ConfigError: `sha256` is None and `path` cannot be read.
        """
        digest = sha256 if sha256 is not None else file_sha256(path, _ADOPT_CHUNK_SIZE)
        return cls(file=found.file, sha256=digest, size=found.file.bytes, attempts=1, obtained=found.obtained)
