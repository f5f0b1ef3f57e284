"""Every bench case, in the order they run (see the package docstring for why this order)."""

from __future__ import annotations

from harness._bench import Case
from harness.cases._ceiling import measure_ceiling
from harness.cases._concurrency import measure_concurrency
from harness.cases._fallback import measure_fallback
from harness.cases._judge import measure_judge
from harness.cases._memory import measure_memory
from harness.cases._overhead import measure_overhead
from harness.cases._rollback import measure_rollback
from harness.cases._scale import measure_scale
from harness.cases._singleflight import measure_single_flight
from harness.cases._split import measure_split
from harness.cases._stall import measure_stall
from harness.cases._throughput import measure_throughput
from harness.cases._timeouts import measure_stalls, measure_timeouts
from harness.cases._traversal import measure_traversal

__all__ = ["CASES"]

CASES: tuple[Case, ...] = (
    Case("split", ("split.uniform", "split.sticky", "split.monotonic"), measure_split),
    Case("judge", ("judge.false-rollback", "judge.power-20pct"), measure_judge),
    Case("traversal", ("traversal.escapes",), measure_traversal),
    Case("single-flight", ("single-flight.fetches",), measure_single_flight),
    Case("concurrency", ("concurrency.success", "concurrency.lost"), measure_concurrency),
    Case("overhead", ("overhead.cpu",), measure_overhead),
    Case("stall", ("no-blocking.p99", "no-blocking.max"), measure_stall),
    Case("throughput", ("throughput.ratio", "latency.p50-drop", "latency.p99-drop"), measure_throughput),
    Case("ceiling", ("scale.curl-speed", "scale.curl-cpu"), measure_ceiling),
    Case("scale", ("scale.stall-p99-150", "scale.lead"), measure_scale),
    Case("fallback", ("fallback.rate", "fallback.duplicates"), measure_fallback),
    Case("rollback", ("rollback.detect",), measure_rollback),
    Case("stalls", ("timeouts.rate",), measure_stalls),
    Case("timeouts", ("timeouts.reduction",), measure_timeouts),
    Case(
        "memory",
        ("mem-upload.peak", "mem-upload.bar", "mem-upload.reduction", "mem-download.flat"),
        measure_memory,
    ),
)
