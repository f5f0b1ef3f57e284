"""`clean_up`: one pass of the quota clean-up, run for a caller against the provider's delete call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llmfiles._errors import ConfigError, LLMFilesError, NotFoundError
from llmfiles.registry._protocol import DEFAULT_LEASE_S, UploadRegistry
from llmfiles.registry._records import CleanupItem


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What one clean-up pass did.

    Args:
        deleted: files the provider deleted (or no longer had) and the registry forgot.
        failed: files whose delete failed, with the error; they stay reserved and are offered to the next
            pass once their lease runs out.
    """

    deleted: tuple[CleanupItem, ...]
    failed: tuple[tuple[CleanupItem, LLMFilesError], ...]


async def clean_up(
    registry: UploadRegistry,
    provider: str,
    *,
    delete: Callable[[str], Awaitable[None]],
    max_files: int | None = None,
    max_bytes: int | None = None,
    purpose: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    concurrency: int = 1,
) -> CleanupResult:
    """Delete unreferenced files, least recently used first, until `provider` fits the quota.

    Reserves the files (`UploadRegistry.reserve_cleanup`), deletes each with `delete` (e.g.
    ``AsyncFilesClient.delete``), at most `concurrency` at once, and forgets it (``mark_deleted``). A 404
    counts as deleted. Any other `LLMFilesError` leaves the file reserved for a later pass and the pass
    goes on; other exceptions cancel the deletes still running and propagate.

    One at a time (the default) adds least to the provider's rate limits, but at a provider's latency
    (a few hundred ms a delete) it frees only a few files a second: a service that uploads a new file
    tens of times a second must delete as fast, or it reaches the quota and every upload waits for a
    clean-up of its own. Such a service sets `concurrency` to about its upload rate times the delete
    latency.

    Args:
        registry: an open registry.
        provider: the provider account to clean up, as in `ContentKey.provider`.
        delete: deletes one provider file by id.
        max_files: files that may stay (e.g. ``KIMI.max_files``); None for no limit.
        max_bytes: bytes that may stay (e.g. ``KIMI.max_total_bytes``); None for no limit.
        purpose: only this purpose (GLM limits each purpose separately); None for all.
        lease_s: how long this pass may take before another cleaner retries its files.
        concurrency: deletes in flight at once (at least 1).
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency={concurrency!r} must be at least 1")
    items = await registry.reserve_cleanup(
        provider, max_files=max_files, max_bytes=max_bytes, purpose=purpose, lease_s=lease_s
    )
    slots = asyncio.Semaphore(concurrency)

    async def remove(item: CleanupItem) -> LLMFilesError | None:
        async with slots:
            try:
                await delete(item.file_id)
            except NotFoundError:
                pass  # already gone at the provider: exactly the state we want
            except LLMFilesError as exc:
                return exc
            await registry.mark_deleted(item)
            return None

    tasks = [asyncio.ensure_future(remove(item)) for item in items]
    try:
        errors = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    deleted = tuple(item for item, error in zip(items, errors, strict=True) if error is None)
    failed = tuple((item, error) for item, error in zip(items, errors, strict=True) if error is not None)
    return CleanupResult(deleted, failed)
