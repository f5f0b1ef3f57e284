"""The raw figures a bench run collects, kept apart from the plots drawn from them.

`Collected` is plain data that round-trips through JSON (it is stored in report.json under ``"data"``),
so the plots can be redrawn from a finished run without measuring again.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Collected", "MemoryPoint", "PeerFigure", "ScalePoint", "ThroughputPoint", "TimelinePoint"]


@dataclass(frozen=True, slots=True)
class MemoryPoint:
    """Peak traced memory of one transfer, measured by memray in its own subprocess.

    Args:
        client: ``legacy``, ``async`` or a peer (``openai-path``, ``httpx-stream``, ...).
        op: ``upload`` or ``download``.
        size_bytes: size of the file moved.
        peak_bytes: memray's high-water mark while the transfer ran.
    """

    client: str
    op: str
    size_bytes: int
    peak_bytes: int


@dataclass(frozen=True, slots=True)
class ThroughputPoint:
    """One arm at one concurrency: how many files and bytes moved in how long."""

    arm: str
    concurrency: int
    files: int
    bytes: int
    seconds: float
    errors: int = 0

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """A point of the rollback timeline: seconds since the run began, a series name, its value."""

    t_s: float
    series: str
    value: float


@dataclass(frozen=True, slots=True)
class PeerFigure:
    """How a peer (openai SDK, plain httpx, curl) did on a figure we also measured, and our ratio to it.

    ``ratio`` is ours / theirs, so below 1 is better for memory and above 1 is better for throughput.
    """

    peer: str
    figure: str
    unit: str
    theirs: float
    ours: float
    rounds: int = 1
    theirs_range: tuple[float, float] | None = None
    ours_range: tuple[float, float] | None = None

    @classmethod
    def of_rounds(
        cls, peer: str, figure: str, unit: str, theirs: Sequence[float], ours: Sequence[float]
    ) -> PeerFigure:
        """Medians of each side's per-round figures, with their ranges; both sides ran the same rounds."""
        if len(theirs) != len(ours) or not ours:
            raise ValueError(f"rounds differ or are missing: theirs={len(theirs)} ours={len(ours)}")
        return cls(
            peer,
            figure,
            unit,
            statistics.median(theirs),
            statistics.median(ours),
            len(ours),
            (min(theirs), max(theirs)),
            (min(ours), max(ours)),
        )

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs if self.theirs else float("nan")

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> PeerFigure:
        ranges = ("theirs_range", "ours_range")
        fields: dict[str, Any] = {k: tuple(v) if k in ranges and v else v for k, v in row.items()}
        return cls(**fields)


Spread = tuple[float, float, float]
"""A figure over the rounds of a run: (median, min, max)."""


@dataclass(frozen=True, slots=True)
class ScalePoint:
    """One client, one operation, one concurrency level of the scale case.

    Timed runs fill the stall, wall and CPU spreads; a memory probe fills `peak_mb_per_transfer` (peak
    traced memory over the transfers in flight at once). Stall figures are None for curl (no loop).
    """

    client: str
    op: str
    concurrency: int
    rounds: int = 0
    stall_p99_ms: Spread | None = None
    stall_max_ms: Spread | None = None
    wall_s: Spread | None = None
    cpu_s_per_gb: Spread | None = None
    errors: int = 0
    peak_mb_per_transfer: float | None = None

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ScalePoint:
        spreads = ("stall_p99_ms", "stall_max_ms", "wall_s", "cpu_s_per_gb")
        fields: dict[str, Any] = {k: tuple(v) if k in spreads and v else v for k, v in row.items()}
        return cls(**fields)


@dataclass(slots=True)
class Collected:
    """Everything a bench run measured besides the verdicts, grouped by plot."""

    memory: list[MemoryPoint] = field(default_factory=list)
    throughput: list[ThroughputPoint] = field(default_factory=list)
    latency_s: dict[str, list[float]] = field(default_factory=dict)
    stall_ms: dict[str, list[float]] = field(default_factory=dict)
    timeline: list[TimelinePoint] = field(default_factory=list)
    markers_s: dict[str, float] = field(default_factory=dict)
    peers: list[PeerFigure] = field(default_factory=list)
    scale: list[ScalePoint] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_json` reads it back."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Collected:
        return cls(
            memory=[MemoryPoint(**row) for row in data.get("memory", [])],
            throughput=[ThroughputPoint(**row) for row in data.get("throughput", [])],
            latency_s={k: list(v) for k, v in data.get("latency_s", {}).items()},
            stall_ms={k: list(v) for k, v in data.get("stall_ms", {}).items()},
            timeline=[TimelinePoint(**row) for row in data.get("timeline", [])],
            markers_s=dict(data.get("markers_s", {})),
            peers=[PeerFigure.from_json(row) for row in data.get("peers", [])],
            scale=[ScalePoint.from_json(row) for row in data.get("scale", [])],
        )
