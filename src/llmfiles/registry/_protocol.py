"""The `UploadRegistry` protocol: what the transfer client and the reference service rely on.

The claim protocol, for N workers that want the same content at the same provider:

1. ``claim(key, size=...)`` answers exactly one of them ``UPLOAD`` (with a token and a lease) and the others
   ``WAIT``; once the file is recorded every later claim answers ``REUSE`` and takes a reference.
2. The uploader calls ``complete(claim, file_id)`` (it then holds one reference) or, on failure,
   ``abandon(claim)`` so the next claim answers ``UPLOAD`` at once.
3. If the uploader dies, its lease runs out and the next claim takes the row over (``UPLOAD``); a late
   ``complete`` by the old owner raises `ClaimLostError`.
4. ``release(key)`` gives a reference back. Ready files without references are the clean-up candidates:
   ``reserve_cleanup`` picks the least recently used until the provider fits the quota, removes their rows
   and reserves them; after deleting each at the provider, ``mark_deleted`` forgets it.

`ensure_uploaded` runs steps 1-2 for a caller, waiting with an injected sleep; `clean_up` runs step 4.
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from llmfiles.registry._records import Claim, CleanupItem, ContentKey, UploadRecord, Usage

DEFAULT_LEASE_S = 600.0
"""How long a claim or a clean-up reservation lasts: long enough for a 100 MB upload on a slow link."""


@runtime_checkable
class UploadRegistry(Protocol):
    """Dedup by SHA-256 per provider, reference counts and quota clean-up, shared by workers and hosts.

    Every method is a coroutine and never blocks the event loop. Open it with ``await registry`` or
    ``async with registry``; the schema is created or migrated on open.
    """

    async def open(self) -> None:
        """Connect and create or migrate the schema; opening an open registry does nothing."""

    async def close(self) -> None:
        """Release connections; closing a closed registry does nothing."""

    def __await__(self) -> Generator[Any, None, Self]:
        """``registry = await open_registry(url)`` opens it."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def get(self, key: ContentKey) -> UploadRecord | None:
        """The record for `key`, pending or ready, or None."""

    async def claim(self, key: ContentKey, *, size: int, lease_s: float = DEFAULT_LEASE_S) -> Claim:
        """Decide atomically who uploads `key`: ``UPLOAD`` (you), ``REUSE`` (reference taken) or ``WAIT``."""

    async def complete(self, claim: Claim, file_id: str) -> UploadRecord:
        """Record the provider's `file_id` for a claim answered ``UPLOAD``; the caller holds one reference."""

    async def abandon(self, claim: Claim) -> bool:
        """Give up a claim answered ``UPLOAD`` (the upload failed); False if the claim was already lost."""

    async def acquire(self, key: ContentKey) -> UploadRecord | None:
        """Take a reference to a ready file; None (and no reference) when it is not ready."""

    async def release(self, key: ContentKey) -> UploadRecord:
        """Give a reference back; `ReferenceCountError` if there is none to give back."""

    async def reserve_cleanup(
        self,
        provider: str,
        *,
        max_files: int | None = None,
        max_bytes: int | None = None,
        purpose: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> list[CleanupItem]:
        """Reserve unreferenced files, least recently used first, until the provider fits the quota.

        Reservations whose lease ran out (a cleaner died) are offered again first.
        """

    async def mark_deleted(self, item: CleanupItem) -> bool:
        """Forget a reserved file once the provider deleted it (or answered 404); False if already gone."""

    async def discard(self, key: ContentKey, file_id: str) -> bool:
        """Forget a ready file the provider lost (404 on use), references and all; False if not recorded."""

    async def usage(self, provider: str, *, purpose: str | None = None) -> Usage:
        """Files and bytes the provider holds according to the registry."""
