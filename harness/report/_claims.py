"""The claims table: every promise of the rollout documents as data, with the threshold that settles it.

Each row of DESIGN.md's "claims the harness must settle" table becomes one or more `Claim`s here (a row
such as "80-90 % less memory, peak < 100 MB" carries two numbers, so it becomes two claims). The table is
the single place where a threshold lives; runners only measure, `judge` only compares.

``must`` claims are the ones the product promises outright (memory bounds, correctness, safety, the
rollback deadline); a failing ``must`` makes the bench exit non-zero. ``should`` claims are the marketing
ranges ("5-10x", "30-50 %") whose size depends on the network as much as on the code: they are reported
with the same care but do not fail the run.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["CLAIMS", "TOPICS", "Claim", "Op", "Priority", "claim_by_id"]

DESIGN = "DESIGN.md, claims table"
JUDGE = "docs/JUDGE.md, repeated checks"

#: The rows of DESIGN.md's claims table, in its order; every one must be covered by at least one claim.
TOPICS = (
    "mem-upload",
    "mem-download",
    "throughput",
    "latency",
    "timeouts",
    "no-blocking",
    "concurrency",
    "single-flight",
    "traversal",
    "split",
    "rollback",
    "fallback",
    "overhead",
    "judge",
    "scale",
)


class Priority(enum.StrEnum):
    """How a failed claim counts: a failing MUST fails the run, a failing SHOULD is only reported."""

    MUST = "must"
    SHOULD = "should"


class Op(enum.StrEnum):
    """How the measured value is compared with the threshold."""

    LT = "<"
    LE = "<="
    GE = ">="
    EQ = "=="

    def holds(self, measured: float, threshold: float) -> bool:
        """Whether ``measured OP threshold`` is true."""
        if self is Op.LT:
            return measured < threshold
        if self is Op.LE:
            return measured <= threshold
        if self is Op.GE:
            return measured >= threshold
        return measured == threshold


@dataclass(frozen=True, slots=True)
class Claim:
    """One promise and the number that settles it.

    Args:
        id: stable identifier, ``<topic>.<aspect>``; report rows and measurements refer to it.
        topic: the DESIGN.md row it comes from (one of `TOPICS`).
        text: the claim as the documents word it.
        source: the document the claim comes from.
        op: comparison between the measured value and `threshold`.
        threshold: the number the claim promises, in `unit`.
        unit: unit of the measured value and the threshold.
        priority: MUST fails the run when it does not hold; SHOULD is reported only.
        how: how the harness measures it, one line for the report.
    """

    id: str
    topic: str
    text: str
    source: str
    op: Op
    threshold: float
    unit: str
    priority: Priority
    how: str

    @property
    def claimed(self) -> str:
        """The promise as a short formula, e.g. ``< 100 MB``."""
        return f"{self.op} {self.threshold:g} {self.unit}".rstrip()


def _claim(
    id: str, text: str, op: str, threshold: float, unit: str, priority: str, how: str, source: str = DESIGN
) -> Claim:
    return Claim(
        id=id,
        topic=id.split(".", 1)[0],
        text=text,
        source=source,
        op=Op(op),
        threshold=threshold,
        unit=unit,
        priority=Priority(priority),
        how=how,
    )


# fmt: off
CLAIMS: tuple[Claim, ...] = (
    _claim("mem-upload.peak", "peak memory < 100 MB for a 50 MB upload", "<", 100, "MB", "must",
           "memray peak of the async upload of a 50 MB file, in a fresh subprocess"),
    _claim("mem-upload.bar", "peak memory <= 4 MB for a 50 MB upload (our own bar: chunks, not the file)",
           "<=", 4, "MB", "must",
           "memray peak of the async upload of a 50 MB file; a whole-file read (50 MB and up) fails it",
           source="harness/README.md, memory"),
    _claim("mem-upload.reduction", "80-90 % less upload memory than legacy", ">=", 80, "%", "must",
           "1 - async peak / legacy peak, 50 MB upload, memray in a subprocess per arm"),
    _claim("mem-download.flat", "download memory constant, independent of file size", "<=", 1.5, "x",
           "must", "memray peak of the largest download / peak of the smallest (1 MB), async arm"),
    _claim("throughput.ratio", "5-10x throughput", ">=", 5, "x", "should",
           "async files/s / legacy files/s at the highest concurrency, same mock, same run, `realistic`"),
    _claim("latency.p50-drop", "30-50 % latency drop", ">=", 30, "%", "should",
           "1 - async p50 / legacy p50 per upload, both arms interleaved in one run, `realistic`"),
    _claim("latency.p99-drop", "30-50 % latency drop (tail)", ">=", 30, "%", "should",
           "1 - async p99 / legacy p99 per upload, same samples as the p50 row"),
    _claim("timeouts.rate", "< 1 % timeouts", "<", 1, "%", "must",
           "share of async uploads ending in a timeout under `stalls` (realistic latency, hangs, 1 KB/s "
           "bodies, 5 s timeouts); unmeasured unless the legacy arm times out on > 1 %"),
    _claim("timeouts.reduction", "95 % fewer timeouts", ">=", 95, "%", "should",
           "1 - async timeout rate / legacy timeout rate under `flaky`, same files, same run"),
    _claim("no-blocking.p99", "5x concurrent uploads without blocking (p99 loop stall)", "<=", 20, "ms",
           "must", "ticker lateness p99 while 8 async uploads run concurrently"),
    _claim("no-blocking.max", "5x concurrent uploads without blocking (worst loop stall)", "<=", 100, "ms",
           "should", "ticker lateness max while 8 async uploads run concurrently"),
    _claim("concurrency.success", "100+ concurrent uploads", ">=", 99, "%", "must",
           "128 concurrent async uploads; success share, every success in the journal with its SHA-256"),
    _claim("concurrency.lost", "100+ concurrent uploads: nothing lost", "==", 0, "files", "must",
           "uploads reported done but missing from the mock's journal or with another SHA-256"),
    _claim("single-flight.fetches", "concurrent downloads of the same file are serialised", "==", 1,
           "fetches", "must", "provider `content` requests in the journal for 16 concurrent callers"),
    _claim("traversal.escapes", "path traversal prevented", "==", 0, "escapes", "must",
           "attack corpus through sanitize_filename/safe_join and real downloads: paths outside target"),
    _claim("split.uniform", "hash split is uniform", ">=", 0.001, "p", "must",
           "chi-square p-value of 10^6 keys over 100 equal bucket ranges"),
    _claim("split.sticky", "hash split is consistent (sticky)", "==", 0, "changes", "must",
           "keys whose bucket differs between two fresh interpreters with different PYTHONHASHSEEDs"),
    _claim("split.monotonic", "raising the percentage only adds keys", "==", 0, "violations", "must",
           "keys in at p % but out at a higher p %, for 0 -> 1 -> 10 -> 50 -> 100"),
    _claim("rollback.detect", "automatic rollback within the controller's bound (the documents: 5 min)",
           "<=", 100, "% of bound", "must",
           "time from the injected brownout to the controller's rollback decision, real controller and "
           "mock, over the controller's promised bound interval x (threshold + 1)"),
    _claim("fallback.rate", "falls back to sync on timeout/connection errors", ">=", 100, "%", "must",
           "requests whose async attempt met an injected transport fault and still succeeded via legacy"),
    _claim("fallback.duplicates", "fallback never stores a file twice", "==", 0, "files", "must",
           "extra provider files (journal uploads given a file id) beyond one per request; the client's and "
           "the dispatcher's reconcile each in a round where the other cannot cover for it"),
    _claim("overhead.cpu", "< 1 % CPU overhead from sanitising/metrics", "<", 1, "%", "must",
           "CPU time of sanitize + event + metrics per upload / CPU time of the upload itself; median of "
           "40 interleaved pairs (one 1 MB upload, one bookkeeping batch)"),
    _claim("judge.false-rollback", "checks every interval roll back a no-worse arm in <= 2 % of stages",
           "<=", 2, "%", "must",
           "simulated A/A stages (1000 per schedule, recorded `realistic` latencies) rolled back by the "
           "controller's rule through the judge; worst of the load-run and production schedules",
           source=JUDGE),
    _claim("judge.power-20pct", "a 20 % slower arm is rolled back within a production stage's minimum",
           ">=", 80, "%", "should",
           "simulated production stages at 10 % (1000; 500 candidate calls, tolerance 1.05) with the "
           "candidate's latencies x1.2 that roll back; the load-run schedules (tolerance 1.20) and x1.5 in "
           "the detail", source=JUDGE),
    _claim("scale.stall-p99-150", "150 uploads requested at once, default settings, keep the loop live",
           "<=", 10, "ms", "must",
           "ticker p99 lateness, 150 uploads (2 MB each, quick 512 KiB) started at once, SHA-256 on; median "
           "of mirrored rounds",
           source="performance at scale"),
    _claim("scale.lead", "at or below the best peer's p99 stall and wall time at every level", "<=", 1, "x",
           "should", "worst ours / best peer over levels, uploads and downloads, p99 stall and wall, "
           "medians of mirrored rounds",
           source="performance at scale"),
    _claim("scale.curl-speed", "single 50 MB upload and download at 0.9x curl or better", ">=", 0.9, "x",
           "should", "lower of ours / curl MB/s (median transfer), upload and download taking turns, `calm`; "
           "SHA-256 alone over as many bytes in memory, timed in the same turns, is the peers table's "
           "cap for any client that checks every byte",
           source="performance at scale"),
    _claim("scale.curl-cpu", "CPU per byte within 2x curl's", "<=", 2, "x", "should",
           "higher of ours / curl CPU s/GB, same transfers as `scale.curl-speed`, curl's start-up off",
           source="performance at scale"),
)
# fmt: on

_BY_ID: Mapping[str, Claim] = MappingProxyType({claim.id: claim for claim in CLAIMS})


def claim_by_id(claim_id: str) -> Claim:
    """The claim called `claim_id`; `KeyError` naming the known ids otherwise."""
    try:
        return _BY_ID[claim_id]
    except KeyError:
        raise KeyError(
            f"claim_id={claim_id!r} is not in the claims table; known: {', '.join(_BY_ID)}"
        ) from None
