"""The registry's typed records: what callers pass in and what they get back.

Every record is a frozen dataclass so a caller can keep one without it changing under them; the database
is the only place state changes.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from llmfiles._errors import ConfigError

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ContentKey:
    """What a provider file is deduplicated by.

    The purpose is part of the key because a provider file is bound to the purpose it was uploaded with
    (Kimi's ``file-extract`` serves extracted text, GLM limits each purpose separately), so the same bytes
    uploaded for two purposes are two provider files.

    Args:
        provider: the provider account's namespace, usually ``ProviderSpec.name`` (``"kimi"``, ``"glm"``);
            use e.g. ``"kimi:team-a"`` when several accounts of one provider share a registry.
        purpose: the upload purpose (``"file-extract"``, ``"batch"``, ...).
        sha256: the content's SHA-256 as 64 lowercase hex digits (``hashlib.sha256(...).hexdigest()``).

    Raises:
        ConfigError: a field is empty or the digest is not 64 lowercase hex digits.
    """

    provider: str
    purpose: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.provider:
            raise ConfigError(f"provider={self.provider!r} is empty; pass the provider's name, e.g. 'kimi'")
        if not self.purpose:
            raise ConfigError(f"purpose={self.purpose!r} is empty; pass the upload purpose, e.g. 'batch'")
        if not _SHA256.fullmatch(self.sha256):
            raise ConfigError(
                f"sha256={self.sha256!r} is not a SHA-256 digest; pass hashlib.sha256(data).hexdigest()"
            )


class RecordState(enum.Enum):
    """Where an upload stands. A row exists only while the file is being uploaded or is at the provider."""

    PENDING = "pending"
    """Claimed: one worker is uploading it; others wait or take over once its lease runs out."""
    READY = "ready"
    """At the provider under ``file_id``; references may be taken."""


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """One deduplicated upload as the registry holds it.

    Args:
        key: provider, purpose and SHA-256 of the content.
        size: the content's size in bytes (counted against quotas while pending too).
        state: pending (being uploaded) or ready (at the provider).
        file_id: the provider's id once ready, None while pending.
        refcount: live references; only ready files with none may be cleaned up.
        created_at: when the row was first claimed (clock seconds).
        last_used_at: when a reference was last taken or released; clean-up takes the oldest first.
        lease_until: while pending, when the uploader's claim runs out; None once ready.
    """

    key: ContentKey
    size: int
    state: RecordState
    file_id: str | None
    refcount: int
    created_at: float
    last_used_at: float
    lease_until: float | None


class ClaimDecision(enum.Enum):
    """The registry's answer to a claim: who uploads the content."""

    UPLOAD = "upload"
    """You hold the claim: upload, then ``complete(claim, file_id)`` or ``abandon(claim)``."""
    REUSE = "reuse"
    """The file is already at the provider and a reference was taken for you; ``release`` it when done."""
    WAIT = "wait"
    """Someone else is uploading it right now; claim again after a short pause."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of `UploadRegistry.claim`.

    Args:
        decision: upload it yourself, reuse the existing file, or wait for another uploader.
        record: the row as it stands after the claim.
        token: with ``UPLOAD``, the secret that proves you own the pending row (pass the claim back to
            ``complete``/``abandon``); None otherwise.
    """

    decision: ClaimDecision
    record: UploadRecord
    token: str | None = field(default=None, repr=False)  # kept out of logs that print claims


@dataclass(frozen=True, slots=True)
class CleanupItem:
    """A provider file reserved for deletion by `UploadRegistry.reserve_cleanup`.

    Its registry row is already gone (new claims of the same content upload afresh); the item stays
    reserved until ``mark_deleted``, and is offered to clean-up again if its lease runs out first.

    Args:
        key: provider, purpose and SHA-256 of the content.
        file_id: the provider file to delete.
        size: its size in bytes.
        lease_until: when this reservation runs out.
    """

    key: ContentKey
    file_id: str
    size: int
    lease_until: float


@dataclass(frozen=True, slots=True)
class Usage:
    """What one provider account holds according to the registry.

    Args:
        files: uploads pending or ready.
        bytes: their total size.
        deleting: files reserved for clean-up and not yet marked deleted (still at the provider).
        deleting_bytes: their total size.
    """

    files: int
    bytes: int
    deleting: int
    deleting_bytes: int
