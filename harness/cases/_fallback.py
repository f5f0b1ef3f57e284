"""Fallback case: transport faults on the async arm; every caller must succeed, no file may be stored twice.

Calls run one at a time. Four rounds, each on a fresh mock:

- ``reset`` and ``hang`` (the ``every: 2`` trigger lands on the async attempt and spares the legacy retry
  that follows it; one warm-up upload makes the count odd first): nothing stored or the read timeout
  fires, the dispatcher reconciles, then falls back. These settle ``fallback.rate``.
- ``client_reconcile``: every upload's answer is lost after the file was stored, and the client uploads
  on its own (no dispatcher), with a retry to spare: only the client's reconcile stands between the lost
  answer and a second copy.
- ``dispatcher_reconcile``: the answer is lost again, and the async arm is a client that does not search
  the listing itself, so the error reaches the dispatcher: only the dispatcher's reconcile (the real
  client's `find_uploaded`, given the bytes' SHA-256) stands between it and a legacy upload of a second
  copy. The stored file is proven by its content and adopted as ``reconciled-verified``.

GLM ``batch`` files: their ``/content`` is the stored bytes, so a reconciled file is proven by its
SHA-256 (``verified`` counts the adoptions labelled so). On Kimi ``file-extract`` a file stored in the
same second as the send began cannot be proven to be the caller's, and the upload ends in
``UploadMayExistError`` rather than in a guess.

Duplicates are counted from the mock's journal, the provider's own record: every upload that was given a
file id is a stored file, and a request's bytes (each file's SHA-256 is its own) stored more than once
are extra files. Each reconcile layer is exercised by a round where the other one cannot cover for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness._context import API_KEY, BenchContext
from harness._lost import find_lost
from harness._wiring import StaticFlags
from harness.cases._arms import base_url, settled_journal
from harness.cases._seams import REAL, Seams
from harness.report._verdict import Measurement
from llmfiles.observe import Recorder
from llmfiles.providers import GLM
from llmfiles.rollout import Dispatcher, FlagState
from llmfiles.transfer import AsyncFilesClient, FileObject, Obtained, TransferSettings, UploadResult

__all__ = ["ROUNDS", "Round", "extra_files", "measure_fallback"]

_LOST = {"match": {"operation": "upload"}, "effect": {"kind": "lost_response"}}


def _every_other_upload(effect: dict[str, Any]) -> dict[str, Any]:
    return {"match": {"operation": "upload"}, "trigger": {"every": 2}, "effect": effect}


Round = tuple[str, tuple[dict[str, Any], ...], int, bool]
#: (name, mock rules, calls, through the dispatcher)
ROUNDS: tuple[Round, ...] = (
    ("reset", (_every_other_upload({"kind": "reset", "after_request_bytes": 0}),), 8, True),
    ("hang", (_every_other_upload({"kind": "hang"}),), 4, True),
    ("client_reconcile", (_LOST,), 6, False),
    ("dispatcher_reconcile", (_LOST,), 6, True),
)
_HANG_TIMEOUT_S = 1.0


def extra_files(requested: Sequence[str], journal: Sequence[Mapping[str, Any]]) -> int:
    """Files stored beyond one per requested SHA-256, from the journal's uploads that got a file id."""
    stored = Counter(
        str(entry.get("sha256"))
        for entry in journal
        if entry.get("operation") == "upload" and entry.get("file_id")
    )
    return sum(max(0, stored[sha256] - 1) for sha256 in requested)


class _SendOnlyClient(AsyncFilesClient):
    """An async arm that never searches the listing itself: what the dispatcher's reconcile is for."""

    async def _settle(self, **_: Any) -> tuple[FileObject, Obtained] | None:
        return None


def _dispatcher(
    arm: AsyncFilesClient, client: AsyncFilesClient, seams: Seams, recorder: Recorder
) -> Dispatcher[UploadResult]:
    """The production wiring (`harness._wiring.make_dispatcher`): `arm` uploads, `client` reconciles."""
    legacy = seams.legacy(GLM, api_key=API_KEY, base_url=client.base_url, timeout=10.0)
    reconcile: dict[str, Any] = (
        {"reconcile": client.find_uploaded, "adopt": UploadResult.adopted}
        if seams.dispatcher_reconcile
        else {}
    )
    return Dispatcher(
        StaticFlags(FlagState(enabled=True, percent=100.0, fallback=seams.fallback)),
        async_arm=arm.upload,
        legacy_arm=legacy.upload,
        recorder=recorder,
        provider=client.provider.name,
        stage="bench",
        legacy_in_thread=True,
        **reconcile,
    )


async def _round(
    ctx: BenchContext, seams: Seams, name: str, rules: Sequence[dict[str, Any]], calls: int, dispatched: bool
) -> dict[str, int]:
    await asyncio.to_thread(ctx.mock.reset)
    await asyncio.to_thread(ctx.mock.set_rules, list(rules))  # trigger counts start here
    paths = [ctx.files.get(8 * 1024 + i, f"fallback-{name}-{i}.txt") for i in range(calls + 1)]
    # The dispatcher's rounds: no client retries, which would hide the fault from the dispatcher. The
    # client's round: one retry, which is what a second copy would come from without reconcile.
    retries = 0 if dispatched else 1
    # A hang never stores, so looking for the file through a long grace is waste.
    settings = TransferSettings(
        read_timeout=_HANG_TIMEOUT_S, retries=retries, backoff_base=0.01, reconcile_grace=_HANG_TIMEOUT_S
    )
    recorder = Recorder()
    done: list[tuple[str, str]] = []
    failures = adopted = verified = 0
    glm = base_url(ctx, "glm")
    arm_class = _SendOnlyClient if name == "dispatcher_reconcile" else seams.client
    async with (
        seams.client(GLM, api_key=API_KEY, base_url=glm, settings=settings) as client,
        arm_class(GLM, api_key=API_KEY, base_url=glm, settings=settings) as arm,
    ):
        # Warm-up: the next upload is the 2nd (a broken client may fail it under a lost answer).
        with contextlib.suppress(Exception):
            await client.upload(paths[0], purpose="batch")
        dispatcher = _dispatcher(arm if dispatched else client, client, seams, recorder)
        for path in paths[1:]:
            try:
                if dispatched:
                    result = await dispatcher.upload(path, purpose="batch", key=path.name)
                else:
                    result = await client.upload(path, purpose="batch")
            except Exception:  # a failed call is counted; the next one still runs
                failures += 1
            else:
                done.append((result.file.id, result.sha256))
                adopted += result.reconciled
                verified += result.obtained is Obtained.RECONCILED_VERIFIED
    await asyncio.to_thread(ctx.mock.set_rules, [])
    journal = await settled_journal(ctx)
    requested = [hashlib.sha256(path.read_bytes()).hexdigest() for path in paths[1:]]  # 8 KB each
    events = recorder.events()
    return {
        "calls": calls,
        "faulted": sum(1 for e in events if e.error_type is not None),
        "rescued": sum(
            1 for e in events if e.error_type is not None and e.outcome in ("fallback", "success")
        ),
        "failures": failures,
        "adopted": adopted,
        "verified": verified,
        "extra_files": extra_files(requested, journal),
        "lost": find_lost(done, journal).lost,
    }


async def measure_fallback(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    per_round = {
        name: await _round(ctx, seams, name, rules, calls, dispatched)
        for name, rules, calls, dispatched in ROUNDS
    }
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    fallback_rounds = [per_round[name] for name in ("reset", "hang")]
    faulted = sum(r["faulted"] for r in fallback_rounds)
    rescued = sum(r["rescued"] for r in fallback_rounds)
    rate = rescued / faulted * 100 if faulted else float("nan")
    note = "" if faulted else "no async attempt met a fault: the injection did not land"
    extra = sum(r["extra_files"] for r in per_round.values())
    detail = {"rounds": per_round, "lost": sum(r["lost"] for r in per_round.values())}
    return [
        Measurement("fallback.rate", rate, {"rounds": {n: per_round[n] for n in ("reset", "hang")}}, note),
        Measurement("fallback.duplicates", extra, detail),
    ]
