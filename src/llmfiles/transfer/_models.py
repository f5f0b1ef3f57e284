"""The values transfers return: provider file objects and upload results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmfiles._errors import TransportError

Progress = Callable[[int, int | None], None]
"""A progress callback: ``(bytes done, total bytes or None when unknown)``."""


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


@dataclass(frozen=True, slots=True)
class UploadResult:
    """What an upload produced.

    Args:
        file: the provider's file object.
        sha256: hex SHA-256 of the bytes read from disk and sent.
        size: bytes sent (the file's size).
        attempts: HTTP attempts made (1 when the first one succeeded).
        reconciled: True when a lost response was recovered by finding the stored file in the listing
            instead of sending it again.
    """

    file: FileObject
    sha256: str
    size: int
    attempts: int
    reconciled: bool
