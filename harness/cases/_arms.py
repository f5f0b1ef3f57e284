"""The two arms as the cases drive them: a batch of uploads at a given concurrency, timed per upload.

The baseline (legacy) gets a thread per concurrent upload, the most the old synchronous client can be
given; the variant (async) gets tasks on one event loop. Both use the same timeouts, so a difference in
timeouts or latency comes from the code, not from a looser setting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._context import API_KEY, BenchContext
from llmfiles import LLMFilesError
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import ErrorKind, classify_error
from llmfiles.providers import provider_by_name
from llmfiles.transfer import AsyncFilesClient, TransferSettings

__all__ = [
    "TIMEOUT_S",
    "BatchResult",
    "base_url",
    "is_timeout",
    "run_async_batch",
    "run_legacy_batch",
    "settled_journal",
]

#: Read/write timeout both arms get in every case (seconds); chaos hangs end here.
TIMEOUT_S = 10.0


@dataclass(slots=True)
class BatchResult:
    """What one arm did with one batch: latencies of the successes, the errors, what was stored."""

    arm: str
    concurrency: int
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    done: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0

    @property
    def attempted(self) -> int:
        return len(self.latencies_s) + len(self.errors)

    @property
    def timeouts(self) -> int:
        return sum(is_timeout(error) for error in self.errors)


def is_timeout(error: BaseException) -> bool:
    """A timeout by type (`TimeoutError`, which `TransferTimeoutError` is, or httpx's), never by name."""
    return classify_error(error) is ErrorKind.TIMEOUT


def base_url(ctx: BenchContext, provider: str) -> str:
    """The mock's API root for `provider` (``"kimi"`` or ``"glm"``)."""
    return str(ctx.mock.kimi_base_url if provider == "kimi" else ctx.mock.glm_base_url)


async def run_async_batch(
    ctx: BenchContext,
    paths: Sequence[Path],
    *,
    concurrency: int,
    provider: str = "kimi",
    purpose: str = "file-extract",
    retries: int = 3,
    timeout_s: float = TIMEOUT_S,
    client_class: type[AsyncFilesClient] = AsyncFilesClient,
) -> BatchResult:
    """Upload `paths` through one `client_class` client with at most `concurrency` in flight."""

    result = BatchResult("async", concurrency)
    settings = TransferSettings(
        read_timeout=timeout_s, write_timeout=timeout_s, max_concurrency=concurrency, retries=retries
    )
    gate = asyncio.Semaphore(concurrency)
    async with client_class(
        provider_by_name(provider), api_key=API_KEY, base_url=base_url(ctx, provider), settings=settings
    ) as client:

        async def one(path: Path) -> None:
            async with gate:
                started = ctx.clock()
                try:
                    uploaded = await client.upload(path, purpose=purpose)
                except LLMFilesError as exc:
                    result.errors.append(exc)
                    return
                result.latencies_s.append(ctx.clock() - started)
                result.done.append((uploaded.file.id, uploaded.sha256))
                result.bytes += uploaded.size

        started = ctx.clock()
        await asyncio.gather(*(one(path) for path in paths))
        result.seconds = ctx.clock() - started
    return result


async def run_legacy_batch(
    ctx: BenchContext,
    paths: Sequence[Path],
    *,
    concurrency: int,
    provider: str = "kimi",
    purpose: str = "file-extract",
    timeout_s: float = TIMEOUT_S,
) -> BatchResult:
    """Upload `paths` with `LegacyFilesClient`, one thread per concurrent upload."""

    result = BatchResult("legacy", concurrency)
    client = LegacyFilesClient(
        provider_by_name(provider), api_key=API_KEY, base_url=base_url(ctx, provider), timeout=timeout_s
    )

    def one(path: Path) -> None:
        started = ctx.clock()
        try:
            uploaded = client.upload(path, purpose=purpose)
        except Exception as exc:  # the old client may surface foreign errors: they count as failures
            result.errors.append(exc)
            return
        result.latencies_s.append(ctx.clock() - started)
        result.done.append((uploaded.file.id, uploaded.sha256))
        result.bytes += uploaded.size

    def run_all() -> None:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="legacy-arm") as pool:
            list(pool.map(one, paths))

    started = ctx.clock()
    await asyncio.to_thread(run_all)
    result.seconds = ctx.clock() - started
    return result


async def settled_journal(
    ctx: BenchContext, *, quiet_s: float = 0.1, timeout_s: float = 5.0
) -> list[dict[str, Any]]:
    """The mock's journal once it stops growing: it writes an entry after the exchange's last byte,
    which can be a moment after the client saw the answer (or gave up on it)."""
    deadline = ctx.clock() + timeout_s
    entries: list[dict[str, Any]] = await asyncio.to_thread(ctx.mock.journal)
    while ctx.clock() < deadline:
        await asyncio.sleep(quiet_s)
        again: list[dict[str, Any]] = await asyncio.to_thread(ctx.mock.journal)
        if len(again) == len(entries):
            return again
        entries = again
    return entries
