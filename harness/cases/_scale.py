"""Scale case: uploads and downloads at rising concurrency, ours against the peers, same loop, same files.

At every level N, N transfers of the same 2 MB files are requested at once (``asyncio.gather``), each
client with its library's defaults (ours: `TransferSettings()`, so N above the default concurrency limit
queues). Per run: the 5 ms ticker's lateness (p99, max), wall time, CPU seconds of this process (curl:
of its processes) per GB moved.

Fairness: every client runs the same number of rounds, in mirrored order (ours, A, B, B, A, ours...), so
a drift of the shared machine or of the mock's disk hits every client alike; the mock is reset before
every run so each starts from the same empty store. Figures are medians over the rounds, with the
spread (min..max) beside them. Peak memory per transfer comes from the memory probe (memray, own
subprocess) at each level.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness._context import MB, BenchContext
from harness.cases._arms import base_url
from harness.cases._memory import probe
from harness.cases._peers import DOWNLOADERS, UPLOADERS, children_cpu_s, open_peer
from harness.cases._stall import stalls_during
from harness.report._series import ScalePoint
from harness.report._verdict import Measurement
from llmfiles.observe import percentile
from llmfiles.transfer import TransferSettings

__all__ = ["SCALE_FILE_SIZE", "measure_scale", "mirrored"]

SCALE_FILE_SIZE = 2 * MB
_STALL_LIMIT_MS = 10.0


def mirrored(names: Sequence[str], rounds: int) -> list[str]:
    """Run order over `rounds`: forward, then backward, and so on (ours, a, b, b, a, ours, ...)."""
    order: list[str] = []
    for index in range(rounds):
        order += names if index % 2 == 0 else list(reversed(names))
    return order


@dataclass(slots=True)
class _Run:
    stalls_ms: list[float]
    wall_s: float
    cpu_s: float
    bytes: int
    errors: int


async def _timed(
    ctx: BenchContext, work: Callable[[], Awaitable[list[int | BaseException]]], *, has_loop: bool
) -> _Run:
    cpu_before = time.process_time() + children_cpu_s()
    started = ctx.clock()
    outcome: list[int | BaseException] = []

    async def run() -> None:
        outcome.extend(await work())

    stalls = await stalls_during(run, ctx.clock)
    wall = ctx.clock() - started
    cpu = time.process_time() + children_cpu_s() - cpu_before
    errors = [o for o in outcome if isinstance(o, BaseException)]
    moved = sum(o for o in outcome if isinstance(o, int))
    return _Run(stalls if has_loop else [], wall, cpu, moved, len(errors))


def _point(client: str, op: str, level: int, runs: list[_Run]) -> ScalePoint:
    def spread(values: list[float]) -> tuple[float, float, float]:
        return statistics.median(values), min(values), max(values)

    p99 = [percentile(r.stalls_ms, 99) or 0.0 for r in runs if r.stalls_ms]
    worst = [max(r.stalls_ms) for r in runs if r.stalls_ms]
    gbs = [r.bytes / 1e9 for r in runs]
    return ScalePoint(
        client=client,
        op=op,
        concurrency=level,
        rounds=len(runs),
        stall_p99_ms=spread(p99) if p99 else None,
        stall_max_ms=spread(worst) if worst else None,
        wall_s=spread([r.wall_s for r in runs]),
        cpu_s_per_gb=spread([r.cpu_s / gb if gb else float("nan") for r, gb in zip(runs, gbs, strict=True)]),
        errors=sum(r.errors for r in runs),
    )


async def _uploads(ctx: BenchContext, level: int, files: list[Path], warm: Path) -> list[ScalePoint]:
    base = base_url(ctx, "glm")
    runs: dict[str, list[_Run]] = {name: [] for name in UPLOADERS}
    for name in mirrored(UPLOADERS, ctx.config.scale_rounds):
        await asyncio.to_thread(ctx.mock.reset)
        async with open_peer(name, base, warm=warm) as peer:

            async def work(
                upload: Callable[[Path], Awaitable[str]] = peer.upload,
            ) -> list[int | BaseException]:
                async def one(path: Path) -> int:
                    await upload(path)
                    return SCALE_FILE_SIZE

                return await asyncio.gather(*(one(p) for p in files[:level]), return_exceptions=True)

            runs[name].append(await _timed(ctx, work, has_loop=name != "curl"))
    return [_point(name, "upload", level, runs[name]) for name in UPLOADERS]


async def _downloads(ctx: BenchContext, level: int, ids: list[str], warm: Path) -> list[ScalePoint]:
    base = base_url(ctx, "glm")
    runs: dict[str, list[_Run]] = {name: [] for name in DOWNLOADERS}
    for index, name in enumerate(mirrored(DOWNLOADERS, ctx.config.scale_rounds)):
        dest = ctx.workdir / f"scale-dl-{index}"
        dest.mkdir()
        async with open_peer(name, base, warm=warm) as peer:

            async def work(
                download: Callable[[str, Path], Awaitable[int]] = peer.download, into: Path = dest
            ) -> list[int | BaseException]:
                return await asyncio.gather(*(download(i, into) for i in ids[:level]), return_exceptions=True)

            runs[name].append(await _timed(ctx, work, has_loop=name != "curl"))
        await asyncio.to_thread(_remove_tree, dest)
    return [_point(name, "download", level, runs[name]) for name in DOWNLOADERS]


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


async def _memory(ctx: BenchContext, level: int, files: list[Path], ids: list[str]) -> list[ScalePoint]:
    """Peak memory per transfer in flight at `level`, ours and (full run) the peers, memray per process."""
    points = []
    limit = TransferSettings().max_concurrency
    for op, names in (("upload", UPLOADERS), ("download", DOWNLOADERS)):
        for name in names if ctx.config.scale_memory_peers else ("ours",):
            if name == "curl":
                continue
            peak, _ = await probe(
                ctx,
                name,
                op,
                provider="glm",
                purpose="batch",
                files=files[:level] if op == "upload" else (),
                file_ids=ids[:level] if op == "download" else (),
            )
            in_flight = min(level, limit) if name == "ours" else level
            points.append(
                ScalePoint(client=name, op=op, concurrency=level, peak_mb_per_transfer=peak / MB / in_flight)
            )
    return points


async def measure_scale(ctx: BenchContext) -> list[Measurement]:
    levels = ctx.config.scale_levels
    top = max(levels)
    files = [ctx.files.get(SCALE_FILE_SIZE, f"scale-{i}.bin") for i in range(top)]
    warm = ctx.files.get(1024, "scale-warm.bin")
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    points: list[ScalePoint] = []
    for level in levels:
        points += await _uploads(ctx, level, files, warm)
    await asyncio.to_thread(ctx.mock.reset)
    async with open_peer("ours", base_url(ctx, "glm")) as ours:
        ids = list(await asyncio.gather(*(ours.upload(p) for p in files)))
    for level in levels:
        points += await _downloads(ctx, level, ids, warm)
    for level in levels:
        points += await _memory(ctx, level, files, ids)
    ctx.data.scale += points
    return _verdicts(points, top)


def _verdicts(points: list[ScalePoint], top: int) -> list[Measurement]:
    timed = [p for p in points if p.wall_s is not None]
    ours_top = next(p for p in timed if p.client == "ours" and p.op == "upload" and p.concurrency == top)
    assert ours_top.stall_p99_ms is not None
    behind: dict[str, list[str]] = {}
    worst_ratio = 0.0
    for point in timed:
        if point.client != "ours" or point.op != "upload":
            continue
        peers = [
            p for p in timed
            if p.op == "upload" and p.concurrency == point.concurrency and p.client != "ours"
        ]  # fmt: skip
        for figure in ("stall_p99_ms", "wall_s"):
            theirs = [getattr(p, figure)[0] for p in peers if getattr(p, figure) is not None]
            mine = getattr(point, figure)[0]
            if not theirs:
                continue
            ratio = mine / max(min(theirs), 1e-9)
            worst_ratio = max(worst_ratio, ratio)
            if ratio > 1:
                behind.setdefault(f"c{point.concurrency}", []).append(f"{figure} {ratio:.2f}x best peer")
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
