"""What a load run measured, per phase and per arm: read back from Locust's samples and the event log.

Service-level figures come from Locust (what a caller saw: latency, failures, throughput) plus the
service's RSS sampled during the phase; per-arm figures come from the dispatcher's events (the time from
the arm's choice to the answer). Both are attributed by start time (see `harness.load._phases`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.load._phases import PhaseWindow
from llmfiles.observe import ARMS, Event, hash_key, read_events
from llmfiles.rollout import in_rollout

__all__ = [
    "RELAYED_STATUS",
    "ArmFigures",
    "Labeller",
    "PhaseFigures",
    "Sample",
    "Tally",
    "arm_labeller",
    "phase_figures",
    "read_run_events",
    "read_samples",
]

_MIB = 1024 * 1024

#: Names the arm an event counts for in its phase, or None to leave the event out.
Labeller = Callable[[Event, PhaseWindow], str | None]


#: The service's answer when an arm's provider refused or failed the upload: the arm's failure (judged
#: per arm), not the service's own.
RELAYED_STATUS = 502


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as Locust saw it (`status` None when no HTTP answer came: a reset, a timeout)."""

    t: float
    latency_s: float
    ok: bool
    user: str | None
    status: int | None = None

    @property
    def own_failure(self) -> bool:
        """Failed, and not by relaying a provider's answer to one arm (`RELAYED_STATUS`)."""
        return not self.ok and self.status != RELAYED_STATUS


@dataclass(frozen=True, slots=True)
class Tally:
    """Latencies (seconds) and failures of one group of calls."""

    latencies_s: tuple[float, ...]
    failures: int

    @property
    def n(self) -> int:
        return len(self.latencies_s)

    def percentile_ms(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_s, q) * 1000) if self.latencies_s else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "failures": self.failures,
            "p50_ms": self.percentile_ms(50),
            "p95_ms": self.percentile_ms(95),
        }


@dataclass(frozen=True, slots=True)
class ArmFigures:
    """One arm inside one phase, from the dispatcher's events."""

    arm: str
    tally: Tally
    fallbacks: int

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, **self.tally.to_dict(), "fallbacks": self.fallbacks}


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """One phase: Locust's view of the service, its RSS, and each arm.

    `service` counts every failed request; `service_own` only the service's own failures (timeouts,
    resets, busy, its errors), leaving out a provider's refusal an arm relayed: those are that arm's,
    judged per arm, and the legacy arm's are the old code's, not the stage's.
    """

    window: PhaseWindow
    service: Tally
    arms: tuple[ArmFigures, ...]
    service_own: Tally

    @property
    def seconds(self) -> float:
        return self.window.end - self.window.start

    @property
    def per_s(self) -> float:
        return self.service.n / self.seconds if self.seconds > 0 else 0.0

    def arm(self, name: str) -> ArmFigures:
        return next(a for a in self.arms if a.arm == name)

    def to_dict(self) -> dict[str, Any]:
        rss = self.window.rss_bytes
        phase = self.window.phase
        return {
            "name": phase.name,
            "role": phase.role,
            "percent": phase.percent,
            "start": self.window.start,
            "end": self.window.end,
            "service": {
                **self.service.to_dict(),
                "own_failures": self.service_own.failures,
                "per_s": self.per_s,
                "rss_mib_mean": sum(rss) / len(rss) / _MIB if rss else None,
                "rss_mib_max": max(rss) / _MIB if rss else None,
            },
            "arms": {a.arm: a.to_dict() for a in self.arms},
        }


def read_samples(folder: Path) -> list[Sample]:
    """Every Locust process's samples (``samples-*.jsonl``), ordered by start."""
    samples = []
    for path in sorted(folder.glob("samples-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                samples.append(
                    Sample(row["t"], row["ms"] / 1000, bool(row["ok"]), row.get("user"), row.get("status"))
                )
    return sorted(samples, key=lambda s: s.t)


def arm_labeller(samples: Iterable[Sample], *, control_arm: str) -> Labeller:
    """How to name an event's arm: its own, or, in an A/A run, the bucket the phase's stage puts it in.

    In an A/A run (`control_arm` ``"async"``) the service routes everyone to the async client, and the
    harness splits the calls exactly as the stage would have: a key in the stage's percentage is the
    candidate (``async``), the rest the control (``legacy``), both served by the same client. The key is
    found from the event's keyed hash over the users Locust ran.
    """
    if control_arm == "legacy":
        return lambda event, _window: str(event.arm)
    users = {s.user for s in samples if s.user}
    by_salt: dict[str, dict[str, str]] = {}

    def label(event: Event, window: PhaseWindow) -> str | None:
        if event.flag not in by_salt:
            by_salt[event.flag] = {hash_key(user, salt=event.flag): user for user in users}
        user = by_salt[event.flag].get(event.key_hash)
        if user is None:
            return None
        return "async" if in_rollout(user, window.phase.percent, event.flag) else "legacy"

    return label


def phase_figures(
    windows: Sequence[PhaseWindow], samples: Sequence[Sample], events: Sequence[Event], *, label: Labeller
) -> list[PhaseFigures]:
    """Figures per phase; requests and events outside every phase (the warm-up) are left out."""
    result = []
    for window in windows:
        mine = [s for s in samples if window.holds(s.t)]
        latencies = tuple(s.latency_s for s in mine)
        service = Tally(latencies, sum(not s.ok for s in mine))
        own = Tally(latencies, sum(s.own_failure for s in mine))
        by_arm: dict[str, list[Event]] = {arm: [] for arm in ARMS}
        for event in events:
            if window.holds(event.ts):
                arm = label(event, window)
                if arm is not None:
                    by_arm[arm].append(event)
        arms = tuple(
            ArmFigures(
                arm,
                Tally(tuple(e.duration_s for e in group), sum(e.outcome != "success" for e in group)),
                sum(e.outcome == "fallback" for e in group),
            )
            for arm, group in by_arm.items()
        )
        result.append(PhaseFigures(window, service, arms, own))
    return result


def read_run_events(path: Path) -> list[Event]:
    """The service's events, or none when it wrote no log."""
    return list(read_events(path)) if path.exists() else []
