"""Settling an upload whose answer was lost: did the provider store it, and is that file provably ours?

Neither provider takes an idempotency key, so after a lost, malformed or 5xx answer the only evidence is
the listing: files of the same name and size created since the upload began. A candidate is adopted only
when it is proven to be ours:

- where ``/content`` serves the stored bytes (`PurposeLimit.content_is_original`), by streaming it and
  comparing SHA-256 with the bytes we sent;
- elsewhere (Kimi ``file-extract``: ``/content`` is extracted text) nothing can be proven. The one
  candidate is adopted, marked `Obtained.RECONCILED_UNVERIFIED`, only when it is the only one, was
  stamped in a later second than our first send began (``created_at`` has whole seconds: a file stamped
  in the same second may be another process's), and no other upload of that name and size is in flight in
  this process.

Anything else raises `UploadMayExistError` with the candidate ids: sending again could leave a second
copy, adopting could hand the caller someone else's file.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager

from llmfiles._errors import UploadMayExistError
from llmfiles.providers import ProviderSpec
from llmfiles.transfer._models import FileObject, Obtained

_in_flight: Counter[Hashable] = Counter()
_in_flight_lock = threading.Lock()


@contextmanager
def in_flight(key: Hashable) -> Iterator[None]:
    """Count an upload of `key` (base URL, name, size) as in flight in this process while it runs."""
    with _in_flight_lock:
        _in_flight[key] += 1
    try:
        yield
    finally:
        with _in_flight_lock:
            _in_flight[key] -= 1
            if not _in_flight[key]:
                del _in_flight[key]


def uploads_in_flight(key: Hashable) -> int:
    """How many uploads of `key` are in flight in this process (every client, every event loop)."""
    with _in_flight_lock:
        return _in_flight[key]


class KeyedLocks:
    """One asyncio lock per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def candidates(
    listing: list[FileObject],
    *,
    filename: str,
    size: int,
    purpose: str | None,
    earliest: float,
    claimed: Callable[[str], bool],
) -> list[FileObject]:
    """Files of the listing that could be the upload, newest first."""
    found = [
        file
        for file in listing
        if file.filename == filename
        and file.bytes == size
        and (purpose is None or file.purpose == purpose)
        and file.created_at >= earliest
        and not claimed(file.id)
    ]
    return sorted(found, key=lambda file: file.created_at, reverse=True)


def verifiable(spec: ProviderSpec, found: list[FileObject]) -> bool:
    """Whether the provider serves the stored bytes of every candidate, so content can prove them."""
    return all(
        (limit := spec.purposes.get(file.purpose)) is not None and limit.content_is_original is True
        for file in found
    )


async def settle(
    spec: ProviderSpec,
    found: list[FileObject],
    *,
    filename: str,
    started: float,
    sha256: Callable[[], Awaitable[str]] | None,
    content_sha256: Callable[[FileObject], Awaitable[str | None]],
    others_in_flight: int,
) -> tuple[FileObject, Obtained] | None:
    """The candidate proven to be ours and how, None when none can be ours, or `UploadMayExistError`.

    Args:
        spec: the provider.
        found: the `candidates`, newest first.
        filename: the upload's name, for the error.
        started: when our first send began (clock seconds).
        sha256: the SHA-256 of the bytes we sent; None when unknown (then nothing is verified).
        content_sha256: SHA-256 of a provider file's ``/content``, None when it is gone; it must fail
            (not answer) when what arrived is not the whole file.
        others_in_flight: other uploads of the same name and size in flight in this process.
    """
    if not found:
        return None
    if sha256 is not None and verifiable(spec, found):
        ours = await sha256()
        proven = [file for file in found if await content_sha256(file) == ours]
        if not proven:
            return None  # every candidate holds other bytes: ours never landed
        if len(proven) == 1:
            return proven[0], Obtained.RECONCILED_VERIFIED
        raise _unsettled(spec, filename, proven, f"{len(proven)} files hold exactly our bytes")
    unproven = "the provider does not serve their stored bytes to compare"
    if others_in_flight:
        raise _unsettled(
            spec,
            filename,
            found,
            f"{unproven} and {others_in_flight} other upload(s) of the same name and size are in flight",
        )
    if len(found) > 1:
        why = f"{unproven} and {len(found)} files have the same name and size"
        raise _unsettled(spec, filename, found, why)
    (file,) = found
    if file.created_at <= math.floor(started):
        raise _unsettled(
            spec,
            filename,
            found,
            f"{unproven} and it was stamped created_at={file.created_at}, not later than the second our "
            f"first send began ({math.floor(started)}), so it may be another upload's",
        )
    return file, Obtained.RECONCILED_UNVERIFIED


def _unsettled(spec: ProviderSpec, filename: str, found: list[FileObject], why: str) -> UploadMayExistError:
    ids = tuple(file.id for file in found)
    return UploadMayExistError(
        f"upload {filename} to {spec.name}: the answer was lost and the file may exist at the provider, but "
        f"no candidate is proven to be this upload ({why}); candidates: {list(ids)!r}. Check them "
        "(download and compare, or delete the ones that are not yours) before uploading again",
        provider=spec.name,
        filename=filename,
        candidate_ids=ids,
    )
