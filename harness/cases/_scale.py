"""Scale case: uploads and downloads at rising concurrency, ours against the peers, same loop, same files.

At every level N, N transfers of the same files (2 MB in the full run) are requested at once
(``asyncio.gather``), batch after batch until the run has moved at least ``scale_min_files``, so low
levels rest on as many ticks as high ones. Each client keeps its library's defaults (ours:
`TransferSettings()`, so N above the default concurrency limit queues). Per run: the 5 ms ticker's
lateness (p99, max), wall time per batch, CPU seconds of this process (curl: of its processes) per GB.

Fairness: every client runs the same number of rounds, in mirrored order (ours, A, B, B, A, ours...), so
a drift of the shared machine or of the mock's disk hits every client alike; the mock is reset before
every upload run so each starts from the same empty store. Figures are medians over the rounds, with
the spread (min..max) beside them. Peak memory per transfer comes from the memory probe (memray, own
subprocess): peak over the transfers in flight at once. ``ours, uvloop`` is ours on a uvloop loop run
in a worker thread (the bench's own loop idles meanwhile), when the ``uvloop`` extra is installed.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import shutil
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles.os
import structlog

from harness._context import MB, BenchContext
from harness.cases._arms import base_url
from harness.cases._memory import probe
from harness.cases._order import mirrored
from harness.cases._peers import (
    DOWNLOADERS,
    OURS,
    UPLOADERS,
    UVLOOP_SUFFIX,
    Stored,
    children_cpu_s,
    open_peer,
)
from harness.cases._seams import REAL, Seams
from harness.cases._stall import stalls_during
from harness.report._series import ScalePoint
from harness.report._verdict import Measurement
from llmfiles.observe import percentile
from llmfiles.transfer import AsyncFilesClient, TransferSettings, file_sha256

__all__ = ["clients_for", "measure_scale"]

_log = structlog.get_logger(__name__)

Clock = Callable[[], float]


@dataclass(slots=True)
class _Run:
    stalls_ms: list[float]
    wall_s: float
    cpu_s: float
    bytes: int
    errors: int


async def _one_run(
    name: str,
    op: str,
    base: str,
    batches: list[list[Any]],
    warm: Path,
    dest: Path,
    clock: Clock,
    ours: type[AsyncFilesClient],
) -> _Run:
    """One client moving every batch in turn, each batch requested at once, next to the 5 ms ticker.

    Runs on whatever loop calls it (the bench's, or a uvloop one in a thread for ``ours, uvloop``).
    `ours` is the class that plays ours (`Seams.client`).
    """
    outcome: list[int | BaseException] = []
    async with open_peer(name.removesuffix(UVLOOP_SUFFIX), base, warm=warm, ours=ours) as peer:

        async def one(item: Any) -> int:
            if op == "upload":
                await peer.upload(item)
                return int((await aiofiles.os.stat(item)).st_size)
            return await peer.download(item, dest)

        async def work() -> None:
            for batch in batches:
                outcome.extend(await asyncio.gather(*(one(i) for i in batch), return_exceptions=True))

        # Every run starts from the same collector state: a full collection left over from whoever ran
        # before (the peers' imports make plenty of objects) must not land in the next client's run.
        gc.collect()
        cpu_before = time.process_time() + children_cpu_s()
        started = clock()
        stalls = await stalls_during(work, clock)
        wall = clock() - started
        cpu = time.process_time() + children_cpu_s() - cpu_before
    errors = [o for o in outcome if isinstance(o, BaseException)]
    moved = sum(o for o in outcome if isinstance(o, int))
    return _Run(stalls if name != "curl" else [], wall / len(batches), cpu, moved, len(errors))


def _on_uvloop(run: Coroutine[Any, Any, _Run]) -> _Run:
    import uvloop  # the optional extra: only imported when clients_for found it

    return uvloop.run(run)


def _point(client: str, op: str, level: int, runs: list[_Run]) -> ScalePoint:
    def spread(values: list[float]) -> tuple[float, float, float]:
        return statistics.median(values), min(values), max(values)

    p99 = [percentile(r.stalls_ms, 99) or 0.0 for r in runs if r.stalls_ms]
    worst = [max(r.stalls_ms) for r in runs if r.stalls_ms]
    return ScalePoint(
        client=client,
        op=op,
        concurrency=level,
        rounds=len(runs),
        stall_p99_ms=spread(p99) if p99 else None,
        stall_max_ms=spread(worst) if worst else None,
        wall_s=spread([r.wall_s for r in runs]),
        cpu_s_per_gb=spread([r.cpu_s / (r.bytes / 1e9) if r.bytes else float("nan") for r in runs]),
        errors=sum(r.errors for r in runs),
    )


def clients_for(op: str, *, extras: bool) -> tuple[str, ...]:
    """Who runs `op` in the curves: ours, the peers; with `extras` also curl and ours on uvloop (if there)."""
    names = [n for n in (UPLOADERS if op == "upload" else DOWNLOADERS) if extras or n != "curl"]
    uvloop = (OURS + UVLOOP_SUFFIX,) if extras and importlib.util.find_spec("uvloop") else ()
    return (names[0], *uvloop, *names[1:])


async def _level(
    ctx: BenchContext, op: str, level: int, items: list[Any], warm: Path, seams: Seams
) -> list[ScalePoint]:
    """Every client at `level`, mirrored rounds; each run moves `level` at once, batch after batch."""
    base = base_url(ctx, "glm")
    batches = [items[i : i + level] for i in range(0, max(level, ctx.config.scale_min_files), level)]
    names = clients_for(op, extras=ctx.config.scale_extras)
    runs: dict[str, list[_Run]] = {name: [] for name in names}
    for index, name in enumerate(mirrored(names, ctx.config.scale_rounds)):
        if op == "upload":
            await asyncio.to_thread(ctx.mock.reset)
        dest = ctx.workdir / f"scale-{op}-{index}"
        dest.mkdir()
        run = _one_run(name, op, base, batches, warm, dest, ctx.clock, seams.client)
        if name.endswith(UVLOOP_SUFFIX):
            runs[name].append(await asyncio.to_thread(_on_uvloop, run))
        else:
            runs[name].append(await run)
        await asyncio.to_thread(shutil.rmtree, dest)
    return [_point(name, op, level, runs[name]) for name in names]


async def _memory(
    ctx: BenchContext, op: str, level: int, files: list[Path], stored: list[Stored]
) -> list[ScalePoint]:
    """Peak memory per transfer in flight at `level`, ours and (full run) the peers, memray per process.

    Each upload probe starts from an empty store, as the curves' runs do: the full run's probes upload
    255 files per client over its levels, and four clients' worth would pass the provider's 1000-file
    quota. Download probes read `stored`, so they run before any reset.
    """
    points = []
    limit = TransferSettings().max_concurrency
    for name in (UPLOADERS if op == "upload" else DOWNLOADERS) if ctx.config.scale_memory_full else (OURS,):
        if name == "curl":  # not a Python process: memray cannot see it
            continue
        if op == "upload":
            await asyncio.to_thread(ctx.mock.reset)
        try:
            peak, _ = await probe(
                ctx,
                name,
                op,
                provider="glm",
                purpose="batch",
                files=files[:level] if op == "upload" else (),
                stored=stored[:level] if op == "download" else (),
            )
        except RuntimeError as exc:
            if name == OURS:
                raise
            # A peer's memory is a point on a curve, not a claim: its failure is logged and its point
            # left out, rather than leaving the scale claims unmeasured.
            _log.warning("scale_memory_probe_failed", client=name, op=op, level=level, error=str(exc))
            continue
        in_flight = min(level, limit) if name == OURS else level
        points.append(
            ScalePoint(client=name, op=op, concurrency=level, peak_mb_per_transfer=peak / MB / in_flight)
        )
    return points


async def measure_scale(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    levels = ctx.config.scale_levels
    top = max(levels)
    count = max(top, ctx.config.scale_min_files)
    files = [ctx.files.get(ctx.config.scale_file_size, f"scale-{i}.bin") for i in range(count)]
    warm = ctx.files.get(1024, "scale-warm.bin")
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    points: list[ScalePoint] = []
    for level in levels:
        points += await _level(ctx, "upload", level, files, warm, seams)
    await asyncio.to_thread(ctx.mock.reset)
    async with open_peer(OURS, base_url(ctx, "glm"), ours=seams.client) as ours:
        ids = list(await asyncio.gather(*(ours.upload(p) for p in files)))
    chunk = TransferSettings().chunk_size
    digests = await asyncio.gather(*(asyncio.to_thread(file_sha256, p, chunk) for p in files))
    stored = [Stored(file_id, digest) for file_id, digest in zip(ids, digests, strict=True)]
    for level in levels:
        points += await _level(ctx, "download", level, stored, warm, seams)
    probed = levels if ctx.config.scale_memory_full else levels[-1:]
    for op in ("download", "upload"):  # downloads first: an upload probe resets the store `ids` live in
        for level in probed:
            points += await _memory(ctx, op, level, files, stored)
    ctx.data.scale += points
    return _verdicts(points, top)


def _verdicts(points: list[ScalePoint], top: int) -> list[Measurement]:
    timed = [p for p in points if p.wall_s is not None]
    ours_top = next(p for p in timed if p.client == OURS and p.op == "upload" and p.concurrency == top)
    assert ours_top.stall_p99_ms is not None
    behind: dict[str, list[str]] = {}
    worst_ratio = 0.0
    for point in timed:
        if point.client != OURS:
            continue
        peers = [
            p for p in timed
            if p.op == point.op and p.concurrency == point.concurrency and not p.client.startswith(OURS)
        ]  # fmt: skip
        for figure in ("stall_p99_ms", "wall_s"):
            theirs = [getattr(p, figure)[0] for p in peers if getattr(p, figure) is not None]
            mine = getattr(point, figure)[0]
            if not theirs:
                continue
            ratio = mine / max(min(theirs), 1e-9)
            worst_ratio = max(worst_ratio, ratio)
            if ratio > 1:
                behind.setdefault(f"{point.op} c{point.concurrency}", []).append(
                    f"{figure} {ratio:.2f}x best peer"
                )
    return [
        Measurement(
            "scale.stall-p99-150",
            ours_top.stall_p99_ms[0],
            {
                "concurrency": top,
                "median_of_rounds": ours_top.rounds,
                "p99_spread_ms": [round(v, 2) for v in ours_top.stall_p99_ms[1:]],
                "default_max_concurrency": TransferSettings().max_concurrency,
            },
        ),
        Measurement("scale.lead", worst_ratio, {"behind": behind}),
    ]
