"""The negative controls: for each claim, a broken variant its measurement must FAIL.

A control is one entry: the claim, what is broken (in words, for the table), the case's measuring
function and the `Seams` that carry the broken part into it. Controls that share a function and seams
share one run, so a case that settles several claims is measured once per broken variant. Adding a claim
means adding its entry here; `tests/harness/test_selfcheck.py` fails while a claim has none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from harness.cases._ceiling import measure_ceiling
from harness.cases._concurrency import measure_concurrency
from harness.cases._fallback import measure_fallback
from harness.cases._judge import measure_judge
from harness.cases._memory import measure_memory
from harness.cases._overhead import measure_overhead
from harness.cases._rollback import measure_rollback
from harness.cases._scale import measure_scale
from harness.cases._seams import Seams
from harness.cases._singleflight import measure_single_flight
from harness.cases._split import measure_split
from harness.cases._stall import measure_stall
from harness.cases._throughput import measure_throughput
from harness.cases._timeouts import measure_stalls, measure_timeouts
from harness.cases._traversal import measure_traversal
from harness.report._verdict import Measurement
from harness.selfcheck import _broken as broken

__all__ = ["CONTROLS", "Control", "Measure"]

Measure = Callable[..., Awaitable[list[Measurement]]]


@dataclass(frozen=True, slots=True)
class Control:
    """One negative control.

    Args:
        claim: the claim id whose verdict must be FAIL.
        variant: what is broken, as the table shows it.
        measure: the case's measuring function; it is called as ``measure(ctx, seams=seams)``.
        seams: the parts to measure, one of them broken.
        quick: part of ``--self-check --quick`` (CI); False for the slow ones, run by the full self-check.
    """

    claim: str
    variant: str
    measure: Measure
    seams: Seams
    quick: bool = True

    @property
    def run_key(self) -> tuple[Any, Seams]:
        """Controls with the same key are settled by one run."""
        return (self.measure, self.seams)


_HASH = Seams(bucket="harness.selfcheck._broken:python_hash_bucket")
_GIVE_UP = Seams(client=broken.GiveUpClient)
_SERIAL = Seams(client=broken.SerialClient)
_HASH_ON_LOOP = Seams(client=broken.HashOnLoopClient)
_WHOLE_FILE = Seams(memory_upload="legacy", memory_download="openai-content")
_UNLIMITED = Seams(client=broken.UnlimitedClient)
_TINY_CHUNKS = Seams(client=broken.TinyChunkClient)
_TINY_STEPS = "4 KiB per worker-thread step: read (upload) or written (download), and hashed"

# fmt: off
CONTROLS: tuple[Control, ...] = (
    Control("split.uniform", "bucket = sum of the key's code points",
            measure_split, Seams(bucket="harness.selfcheck._broken:code_point_bucket")),
    Control("split.sticky", "hash() bucketing (salted per process)", measure_split, _HASH),
    Control("split.monotonic", "the percentage salted into the hash",
            measure_split, Seams(in_rollout=broken.rehashed_in_rollout)),
    Control("traversal.escapes", "download sanitiser that does nothing",
            measure_traversal, Seams(client=broken.TrustingNameClient)),
    Control("single-flight.fetches", "single-flight off", measure_single_flight,
            Seams(client=broken.NoSingleFlightClient)),
    Control("concurrency.success", "1 pooled connection for 128 uploads, 1 ms pool wait, no retries",
            measure_concurrency, Seams(client=broken.StarvedPoolClient)),
    Control("concurrency.lost", "reports the SHA-256 of the name, not of the bytes", measure_concurrency,
            Seams(client=broken.UnverifiedHashClient)),
    Control("overhead.cpu", "recorder that re-summarises its window on every event", measure_overhead,
            Seams(recorder=broken.SummarisingRecorder)),
    Control("fallback.rate", "dispatcher that never falls back to legacy", measure_fallback,
            Seams(fallback=False)),
    Control("fallback.duplicates", "client without reconcile", measure_fallback,
            Seams(client=broken.NoReconcileClient)),
    Control("fallback.duplicates", "dispatcher without reconcile", measure_fallback,
            Seams(dispatcher_reconcile=False)),
    Control("timeouts.rate", "async arm without retries or a second look", measure_stalls, _GIVE_UP),
    Control("timeouts.reduction", "async arm without retries or a second look", measure_timeouts,
            _GIVE_UP),
    Control("throughput.ratio", "async arm sends one upload at a time", measure_throughput, _SERIAL,
            quick=False),
    Control("latency.p50-drop", "async arm sends one upload at a time", measure_throughput, _SERIAL,
            quick=False),
    Control("latency.p99-drop", "async arm sends one upload at a time", measure_throughput, _SERIAL,
            quick=False),
    Control("no-blocking.p99", "SHA-256 of the whole file on the event loop", measure_stall, _HASH_ON_LOOP),
    Control("no-blocking.max", "the legacy client's blocking upload on the event loop", measure_stall,
            Seams(client=broken.LoopBlockingClient)),
    Control("rollback.detect", "controller that checks every 8th interval", measure_rollback,
            Seams(controller=broken.LateController), quick=False),
    Control("judge.false-rollback", "a judge that compares sample medians, no confidence",
            measure_judge, Seams(latency_verdict=broken.median_verdict)),
    Control("judge.power-20pct", "a judge that never finds the candidate slower", measure_judge,
            Seams(latency_verdict=broken.lenient_verdict)),
    Control("mem-upload.peak", "whole-file upload (read + multipart copy)", measure_memory, _WHOLE_FILE),
    Control("mem-upload.bar", "whole-file upload (read + multipart copy)", measure_memory, _WHOLE_FILE),
    Control("mem-upload.reduction", "whole-file upload (read + multipart copy)", measure_memory,
            _WHOLE_FILE),
    Control("mem-download.flat", "download buffered whole in memory", measure_memory, _WHOLE_FILE),
    Control("scale.stall-p99-150", "no concurrency limit: all 150 uploads on the wire at once",
            measure_scale, _UNLIMITED),
    Control("scale.lead", "no concurrency limit: all 150 transfers on the wire at once", measure_scale,
            _UNLIMITED),
    Control("scale.curl-speed", _TINY_STEPS, measure_ceiling, _TINY_CHUNKS),
    Control("scale.curl-cpu", _TINY_STEPS, measure_ceiling, _TINY_CHUNKS),
)
# fmt: on
