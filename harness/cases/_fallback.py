"""Fallback case: transport faults injected on the async arm's attempts; every caller must still succeed.

Calls run one at a time so the mock's ``every: 2`` trigger lands on the async attempt and spares the
legacy retry that follows it (one warm-up upload makes the count odd first). Three rounds: a reset
before the body arrives (nothing stored: fall back), a hang (the read timeout fires: reconcile, then
fall back if nothing was stored), and a lost response (stored, answer lost: reconcile must adopt the
stored file instead of uploading a second copy).

GLM ``batch`` files: their ``/content`` is the stored bytes, so a reconciled file is proven by its
SHA-256. On Kimi ``file-extract`` a file stored in the same second as the send began cannot be proven to
be the caller's, and the upload ends in ``UploadMayExistError`` rather than in a guess.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness._context import API_KEY, BenchContext
from harness._lost import find_lost
from harness._wiring import StaticFlags, make_dispatcher
from harness.cases._arms import base_url
from harness.report._verdict import Measurement
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import Recorder
from llmfiles.providers import GLM
from llmfiles.rollout import FlagState
from llmfiles.transfer import AsyncFilesClient, TransferSettings

__all__ = ["ROUNDS", "measure_fallback"]

ROUNDS: tuple[tuple[str, dict[str, Any], int], ...] = (
    ("reset", {"kind": "reset", "after_request_bytes": 0}, 8),
    ("hang", {"kind": "hang"}, 4),
    ("lost_response", {"kind": "lost_response"}, 8),
)
_HANG_TIMEOUT_S = 1.0


async def measure_fallback(ctx: BenchContext) -> list[Measurement]:

    glm = base_url(ctx, "glm")
    # No retries in the client: a retry would hide the fault from the dispatcher, whose fallback is the
    # thing measured here. A hang never stores, so looking for the file through a long grace is waste.
    settings = TransferSettings(read_timeout=_HANG_TIMEOUT_S, retries=0, reconcile_grace=_HANG_TIMEOUT_S)
    legacy = LegacyFilesClient(GLM, api_key=API_KEY, base_url=glm, timeout=10.0)
    per_round: dict[str, dict[str, int]] = {}
    faulted = rescued = calls = extra_files = lost = 0
    for name, effect, count in ROUNDS:
        await asyncio.to_thread(ctx.mock.reset)
        rule = {"match": {"operation": "upload"}, "trigger": {"every": 2}, "effect": effect}
        await asyncio.to_thread(ctx.mock.set_rules, [rule])
        recorder = Recorder()
        paths = [ctx.files.get(8 * 1024 + i, f"fallback-{name}-{i}.txt") for i in range(count + 1)]
        async with AsyncFilesClient(GLM, api_key=API_KEY, base_url=glm, settings=settings) as client:
            await client.upload(paths[0], purpose="batch")  # warm-up: the next upload is the 2nd
            dispatcher = make_dispatcher(
                StaticFlags(FlagState(enabled=True, percent=100.0)),
                client=client,
                legacy=legacy,
                recorder=recorder,
            )
            done: list[tuple[str, str]] = []
            failures = 0
            for path in paths[1:]:
                try:
                    result = await dispatcher.upload(path, purpose="batch", key=path.name)
                except Exception:
                    failures += 1
                else:
                    done.append((result.file.id, result.sha256))
            stored = await client.list()
        events = recorder.events()
        hit = sum(1 for e in events if e.error_type is not None)
        saved = sum(1 for e in events if e.error_type is not None and e.outcome in ("fallback", "success"))
        journal = await asyncio.to_thread(ctx.mock.journal)
        report = find_lost(done, journal)
        per_round[name] = {
            "calls": count,
            "faulted": hit,
            "rescued": saved,
            "failures": failures,
            "stored_files": len(stored) - 1,
        }
        faulted += hit
        rescued += saved
        calls += count
        extra_files += max(0, len(stored) - 1 - len(done))
        lost += report.lost
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    detail = {"rounds": per_round, "lost": lost}
    rate = rescued / faulted * 100 if faulted else float("nan")
    note = "" if faulted else "no async attempt met a fault: the injection did not land"
    return [
        Measurement("fallback.rate", rate, detail, note),
        Measurement("fallback.duplicates", extra_files, {"calls": calls, "rounds": per_round}),
    ]
