"""The service's side of the upload registry: upload once per content, give references back, clean up.

Every upload the service answers holds one registry reference for its caller, whether it went to the
provider or reused a file already there; ``DELETE /files/{id}`` (or ``--delete-after``) gives it back, and
the quota clean-up deletes only files nobody references.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter

from llmfiles import LLMFilesError
from llmfiles.registry import (
    ContentKey,
    ReferenceCountError,
    UploadRecord,
    UploadRegistry,
    Usage,
    clean_up,
    ensure_uploaded,
)

__all__ = ["QuotaGuard", "RegistryMetrics", "clean_pass", "release_file", "release_held", "upload_once"]

_log = structlog.get_logger(__name__)


class RegistryMetrics:
    """Prometheus counters for deduplication and clean-up, beside the rollout's on ``/metrics``.

    Args:
        registry: the collector registry ``/metrics`` exposes (`RolloutMetrics.registry`).
        namespace: metric name prefix.
    """

    def __init__(self, registry: CollectorRegistry, *, namespace: str = "llmfiles") -> None:
        self.dedup_hits = Counter(
            "registry_dedup_hits",
            "Uploads answered with a file already at the provider, so nothing was uploaded.",
            ("provider", "purpose"),
            namespace=namespace,
            registry=registry,
        )
        self.cleaned = Counter(
            "registry_cleanup_files",
            "Unreferenced provider files the quota clean-up deleted (or failed to delete).",
            ("provider", "outcome"),
            namespace=namespace,
            registry=registry,
        )


async def upload_once(
    registry: UploadRegistry,
    key: ContentKey,
    *,
    size: int,
    upload: Callable[[], Awaitable[str]],
    metrics: RegistryMetrics,
) -> tuple[UploadRecord, bool]:
    """The ready record for `key` (one reference held for the caller) and whether it was deduplicated.

    Of concurrent callers with the same key exactly one runs `upload` (see `ensure_uploaded`); every
    other caller, and every later one while the file is kept, is a dedup hit.
    """
    uploaded = False

    async def first() -> str:
        nonlocal uploaded
        file_id = await upload()
        uploaded = True
        return file_id

    record = await ensure_uploaded(registry, key, size=size, upload=first)
    if not uploaded:
        metrics.dedup_hits.labels(key.provider, key.purpose).inc()
    return record, not uploaded


async def release_file(registry: UploadRegistry, key: ContentKey, file_id: str) -> UploadRecord | None:
    """Give back one reference to `file_id` stored under `key`; None if there is none to give back.

    A caller may name a file and a digest that do not belong together; the check comes first so that
    such a request never touches another file's count.
    """
    current = await registry.get(key)
    if current is None or current.file_id != file_id:
        return None
    try:
        record = await registry.release(key)
    except ReferenceCountError:
        return None
    if record.file_id != file_id:
        # The file was cleaned up and the content uploaded afresh between the check and the release:
        # that reference belonged to the new file's holder, so take it back.
        await registry.acquire(key)
        return None
    return record


async def release_held(registry: UploadRegistry, key: ContentKey) -> UploadRecord | None:
    """Give back a reference the service itself took for an answer it sent (``--delete-after``).

    A held reference keeps its record: nothing can clean it up or upload the content afresh while it
    is held, so the check `release_file` makes first is not needed. One registry transaction instead of
    two on every upload's way out.
    """
    try:
        return await registry.release(key)
    except ReferenceCountError:
        return None


async def _clean(
    registry: UploadRegistry,
    provider: str,
    *,
    delete: Callable[[str], Awaitable[None]],
    max_files: int,
    max_bytes: int,
    metrics: RegistryMetrics,
    concurrency: int,
) -> None:
    """One `clean_up` pass, counted and logged; a registry failure is logged and left to the next pass."""
    try:
        result = await clean_up(
            registry,
            provider,
            delete=delete,
            max_files=max_files,
            max_bytes=max_bytes,
            concurrency=concurrency,
        )
    except LLMFilesError as exc:
        _log.warning("registry clean-up failed", provider=provider, error=type(exc).__name__)
        return
    metrics.cleaned.labels(provider, "deleted").inc(len(result.deleted))
    metrics.cleaned.labels(provider, "failed").inc(len(result.failed))
    for item, failure in result.failed:
        _log.warning(
            "provider delete failed; retried after the reservation lapses",
            file_id=item.file_id,
            error=type(failure).__name__,
        )


def clean_pass(
    registry: UploadRegistry,
    *,
    provider: str,
    delete: Callable[[str], Awaitable[None]],
    max_files: int,
    max_bytes: int,
    metrics: RegistryMetrics,
    concurrency: int,
) -> Callable[[], Awaitable[None]]:
    """The background pass for `Cleaner`: unreferenced files beyond the limits go, oldest first."""
    return functools.partial(
        _clean,
        registry,
        provider,
        delete=delete,
        max_files=max_files,
        max_bytes=max_bytes,
        metrics=metrics,
        concurrency=concurrency,
    )


class QuotaGuard:
    """Keeps the provider within `max_files`/`max_bytes` by deleting unreferenced files before uploads.

    The background clean-up deletes one file at a time behind the uploads' share of the connection
    limit, so under load it falls behind; an uploader that finds the provider full frees the room itself.
    One such pass runs at a time, and each waiter looks again after it: passes that ran side by side would
    each evict what the others already had, emptying the reuse cache.

    Asking the registry for its usage before every upload was a database round-trip per request on the
    hot path. The guard keeps the last answer for `refresh_s` and adds every upload it let through since
    (deletions are not subtracted, so the estimate only errs high); it asks again once that estimate
    would pass a limit or the answer is older than `refresh_s`. Near the limits it thus asks before every
    upload, as before; far from them about once per `refresh_s`. Other processes sharing the registry are
    seen at the next refresh, inside the tenth of the account the default limits leave free.

    Args:
        registry: the open registry.
        provider: the provider account, as in `ContentKey.provider`.
        delete: deletes one provider file by id.
        max_files: files the provider may hold (files being deleted count: the provider still has them).
        max_bytes: bytes the provider may hold.
        metrics: where deleted files are counted.
        concurrency: deletes in flight at once in a pass (`clean_up`'s).
        refresh_s: longest time a usage answer is trusted far from the limits.
        clock: monotonic seconds (inject a fake one in tests).
    """

    def __init__(
        self,
        registry: UploadRegistry,
        provider: str,
        *,
        delete: Callable[[str], Awaitable[None]],
        max_files: int,
        max_bytes: int,
        metrics: RegistryMetrics,
        concurrency: int = 1,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._provider = provider
        self._delete = delete
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._metrics = metrics
        self._concurrency = concurrency
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._known: tuple[float, int, int] | None = None  # (asked at, files, bytes) incl. those let through

    def _fits(self, files: int, size: int) -> bool:
        return files <= self._max_files and size <= self._max_bytes

    async def _full(self) -> Usage | None:
        usage = await self._registry.usage(self._provider)
        files = usage.files + usage.deleting
        size = usage.bytes + usage.deleting_bytes
        self._known = (self._clock(), files, size)
        if self._fits(files, size):
            return None
        return usage

    def _surely_fits(self, size: int) -> bool:
        """True when the last answer plus the uploads let through since leave room for this one too."""
        if self._known is None:
            return False
        asked_at, files, stored = self._known
        if self._clock() - asked_at >= self._refresh_s or not self._fits(files + 1, stored + size):
            return False
        self._known = (asked_at, files + 1, stored + size)
        return True

    async def make_room(self, size: int) -> None:
        """Call it holding an upload's claim of `size` bytes: the claim's pending row is counted, so
        concurrent uploaders see each other. If nothing unreferenced is left, the upload goes ahead and
        the provider decides.
        """
        if self._surely_fits(size) or await self._full() is None:
            return
        async with self._lock:
            usage = await self._full()  # the pass this caller waited for may have made the room
            if usage is None:
                return
            await _clean(
                self._registry,
                self._provider,
                delete=self._delete,
                max_files=max(0, self._max_files - usage.deleting),
                max_bytes=max(0, self._max_bytes - usage.deleting_bytes),
                metrics=self._metrics,
                concurrency=self._concurrency,
            )
