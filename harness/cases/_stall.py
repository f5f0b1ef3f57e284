"""Event-loop stall case: how late a 5 ms ticker wakes while uploads run on the same loop.

Variant: 8 concurrent async uploads. Baseline: the legacy client called straight from a coroutine, the
way the old service did; its stall is the time the loop is frozen. Peers: AsyncOpenAI given a `Path`
(reads the file inside the loop) and given a file object (streams it from the loop). Ours and the peers
run the same rounds in mirrored order (`harness.cases._order.mirrored`) and the peer rows compare
medians of each round's figure, never one side's worst round with the other's only one.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai

from harness._context import API_KEY, MB, BenchContext
from harness.cases._arms import base_url
from harness.cases._order import mirrored
from harness.cases._seams import REAL, Seams
from harness.report._series import PeerFigure
from harness.report._verdict import Measurement
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import percentile
from llmfiles.providers import KIMI
from llmfiles.transfer import TransferSettings

__all__ = ["STALL_FILES", "TICK_S", "measure_stall", "stalls_during"]

TICK_S = 0.005
STALL_FILES = 8
_STALL_FILE_SIZE = 20 * MB
_SINGLE_FILE_SIZE = 50 * MB


async def stalls_during(work: Callable[[], Awaitable[object]], clock: Callable[[], float]) -> list[float]:
    """Run `work` on this loop next to a ticker; return each tick's lateness in milliseconds."""
    lateness: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        expected = clock() + TICK_S
        while not done.is_set():
            await asyncio.sleep(TICK_S)
            now = clock()
            lateness.append(max(0.0, now - expected) * 1000)
            expected = now + TICK_S

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.sleep(TICK_S)  # let the ticker take its first step before the work starts
        await work()
    finally:
        done.set()
        await ticker
    return lateness


async def measure_stall(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:

    paths = [ctx.files.get(_STALL_FILE_SIZE, f"stall-{i}.txt") for i in range(STALL_FILES)]
    kimi = base_url(ctx, "kimi")
    await asyncio.to_thread(ctx.mock.reset)
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    settings = TransferSettings(max_concurrency=STALL_FILES)
    async with seams.client(KIMI, api_key=API_KEY, base_url=kimi, settings=settings) as client:
        warmup = [ctx.files.get(1024, f"stall-warm-{i}.txt") for i in range(STALL_FILES)]

        async def upload_all(batch: list[Path]) -> object:
            return await asyncio.gather(*(client.upload(p, purpose="file-extract") for p in batch))

        # A service's first uploads pay one-time costs (pool, thread pool, lazy imports); a stall claim is
        # about steady state, so the cold round is measured but reported apart.
        cold = await stalls_during(lambda: upload_all(warmup), ctx.clock)
        idle = await stalls_during(lambda: asyncio.sleep(0.5), ctx.clock)
        rounds = await _rounds_with_peers(ctx, paths, lambda: upload_all(paths))
        ours = [tick for one in rounds[_OURS] for tick in one]
        # The transfer core's own goal: one 50 MB upload stalls the loop by under 5 ms.
        big = ctx.files.get(_SINGLE_FILE_SIZE, "stall-single.txt")
        single = await stalls_during(lambda: client.upload(big, purpose="file-extract"), ctx.clock)
    legacy = LegacyFilesClient(KIMI, api_key=API_KEY, base_url=kimi)

    async def legacy_in_loop() -> object:
        for path in paths[:3]:
            legacy.upload(path, purpose="file-extract")  # blocks the loop on purpose: the old service did
            await asyncio.sleep(0)
        return None

    theirs = await stalls_during(legacy_in_loop, ctx.clock)
    ctx.data.stall_ms.update({"async": ours, "legacy-in-loop": theirs})
    detail = {
        "concurrent_uploads": STALL_FILES,
        "file_mb": _STALL_FILE_SIZE // MB,
        "rounds": len(rounds[_OURS]),
        "ticks": len(ours),
        "cold_round_max_ms": round(max(cold, default=0.0), 1),
        "idle_loop_p99_ms": percentile(idle, 99),
        "async_max_ms": round(max(ours, default=0.0), 1),
        "legacy_in_loop_max_ms": round(max(theirs, default=0.0), 1),
        "legacy_in_loop_p99_ms": percentile(theirs, 99),
        "single_50mb_upload_max_ms": round(max(single, default=0.0), 1),
        "single_50mb_upload_p99_ms": percentile(single, 99),
    }
    return [
        Measurement("no-blocking.p99", percentile(ours, 99), detail),
        Measurement("no-blocking.max", max(ours, default=float("nan")), detail),
    ]


_OURS = "ours"


async def _rounds_with_peers(
    ctx: BenchContext, paths: list[Path], ours: Callable[[], Awaitable[object]]
) -> dict[str, list[list[float]]]:
    """Ours and the AsyncOpenAI peers, the same rounds each in mirrored order, the mock reset before each.

    Returns every run's tick lateness per client; the peer rows compare medians of per-round figures.
    """
    async with openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url(ctx, "kimi"), max_retries=0) as sdk:
        # Kimi's purposes are not in the SDK's Literal of OpenAI purposes; the wire format is the same.
        purpose: Any = "file-extract"

        async def with_paths() -> object:
            return await asyncio.gather(*(sdk.files.create(file=p, purpose=purpose) for p in paths))

        async def with_file_objects() -> object:
            handles = [p.open("rb") for p in paths]
            try:
                return await asyncio.gather(*(sdk.files.create(file=h, purpose=purpose) for h in handles))
            finally:
                for handle in handles:
                    handle.close()

        clients = {
            _OURS: ours,
            "AsyncOpenAI, Path": with_paths,
            "AsyncOpenAI, file object": with_file_objects,
        }
        runs: dict[str, list[list[float]]] = {name: [] for name in clients}
        for name in mirrored(list(clients), ctx.config.scale_rounds):
            await asyncio.to_thread(ctx.mock.reset)
            gc.collect()  # the same collector state for every run (see the scale case)
            runs[name].append(await stalls_during(clients[name], ctx.clock))
    figure = f"max loop stall, {STALL_FILES} x {_STALL_FILE_SIZE // MB} MB uploads"
    for name, stalls in runs.items():
        if name != _OURS:
            ctx.data.peers.append(
                PeerFigure.of_rounds(
                    name, figure, "ms", [max(r) for r in stalls], [max(r) for r in runs[_OURS]]
                )
            )
    return runs
