"""`clean_up`: one pass of the quota clean-up, run for a caller against the provider's delete call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llmfiles._errors import LLMFilesError, NotFoundError
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
) -> CleanupResult:
    """Delete unreferenced files, least recently used first, until `provider` fits the quota.

    Reserves the files (`UploadRegistry.reserve_cleanup`), deletes each with `delete` (e.g.
    ``AsyncFilesClient.delete``) one at a time, so a clean-up never adds to the provider's rate limits,
    and forgets it (``mark_deleted``). A 404 counts as deleted. Any other `LLMFilesError` leaves the file
    reserved for a later pass and the pass goes on; other exceptions propagate.

    Args:
        registry: an open registry.
        provider: the provider account to clean up, as in `ContentKey.provider`.
        delete: deletes one provider file by id.
        max_files: files that may stay (e.g. ``KIMI.max_files``); None for no limit.
        max_bytes: bytes that may stay (e.g. ``KIMI.max_total_bytes``); None for no limit.
        purpose: only this purpose (GLM limits each purpose separately); None for all.
        lease_s: how long this pass may take before another cleaner retries its files.
    """
    items = await registry.reserve_cleanup(
        provider, max_files=max_files, max_bytes=max_bytes, purpose=purpose, lease_s=lease_s
    )
    deleted: list[CleanupItem] = []
    failed: list[tuple[CleanupItem, LLMFilesError]] = []
    for item in items:
        try:
            await delete(item.file_id)
        except NotFoundError:
            pass  # already gone at the provider: exactly the state we want
        except LLMFilesError as exc:
            failed.append((item, exc))
            continue
        await registry.mark_deleted(item)
        deleted.append(item)
    return CleanupResult(tuple(deleted), tuple(failed))
