"""`ensure_uploaded`: the claim protocol run for a caller, so every caller gets it right once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from llmfiles._errors import ConfigError, RegistryError
from llmfiles.registry._protocol import DEFAULT_LEASE_S, UploadRegistry
from llmfiles.registry._records import ClaimDecision, ContentKey, UploadRecord

Sleep = Callable[[float], Awaitable[None]]


async def ensure_uploaded(
    registry: UploadRegistry,
    key: ContentKey,
    *,
    size: int,
    upload: Callable[[], Awaitable[str]],
    lease_s: float = DEFAULT_LEASE_S,
    first_poll_s: float = 0.05,
    max_poll_s: float = 1.0,
    sleep: Sleep = asyncio.sleep,
) -> UploadRecord:
    """The ready record for `key` with one reference held for the caller, uploading only if nobody has.

    Of many concurrent callers for the same key exactly one runs `upload`; the others poll (first after
    `first_poll_s`, doubling up to `max_poll_s`) until it completes and then reuse its file. If `upload`
    raises (or is cancelled) the claim is abandoned, so a waiting caller uploads next, and the error
    propagates. Wrap the call in ``asyncio.timeout`` to bound the wait; an uploader that died silently
    holds the others up for at most `lease_s`. If the provider later answers 404 for the returned file,
    ``registry.discard(key, record.file_id)`` and call this again.

    Args:
        registry: an open registry.
        key: provider, purpose and SHA-256 of the content.
        size: the content's size in bytes.
        upload: uploads the content and returns the provider's file id.
        lease_s: how long this caller's claim lasts; longer than the slowest upload.
        first_poll_s: the first pause while another caller uploads.
        max_poll_s: the longest pause between polls.
        sleep: waits that many seconds (injected so tests do not sleep).

    Raises:
        ClaimLostError: the upload outlived `lease_s` and another caller took over; the error carries the
            provider file id this caller uploaded, which the registry did not record.
        RegistryError: the database failed.
    """
    if not 0 < first_poll_s <= max_poll_s:
        raise ConfigError(
            f"first_poll_s={first_poll_s!r}, max_poll_s={max_poll_s!r}: need 0 < first_poll_s <= max_poll_s"
        )
    pause = first_poll_s
    while True:
        claim = await registry.claim(key, size=size, lease_s=lease_s)
        if claim.decision is ClaimDecision.REUSE:
            return claim.record
        if claim.decision is ClaimDecision.UPLOAD:
            try:
                file_id = await upload()
            except BaseException:
                # Best effort: if the database is down too, the lease frees the row when it runs out.
                with contextlib.suppress(RegistryError):
                    await registry.abandon(claim)
                raise
            return await registry.complete(claim, file_id)
        await sleep(pause)
        pause = min(pause * 2, max_poll_s)
