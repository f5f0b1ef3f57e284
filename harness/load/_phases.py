"""The phases of a load run and the driver that switches the service's stage between them.

A stage-promotion run is a before/after at equal load: control phases at the current stage and
candidate phases at the target stage, alternated (control, candidate, control, candidate) so that
drift on a shared machine (another job starting, the page cache filling) hits both sides. Locust's
offered load never changes; only the flag file the service reads does. A short warm-up first (users
spawning, connections opening) belongs to no phase.

Each request belongs to the phase in which it started: the arm is chosen at the start, and a request
that straddles a switch was served under the stage it started in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from llmfiles import ConfigError
from llmfiles.rollout import DEFAULT_GATES, FileFlagSource, FlagState

__all__ = ["Phase", "PhaseDriver", "PhaseWindow", "control_percent", "plan_phases"]

Role = Literal["control", "candidate"]

#: Control and candidate phases of a stage-promotion run, in order.
ROLES: tuple[Role, ...] = ("control", "candidate", "control", "candidate")
#: The candidate phases' share of the phased time. More than half: the new arm's calls, which the
#: per-arm judgements need a few hundred of, come only from the candidate phases (a tenth of their
#: requests at 10 %), while the before/after comparison has thousands of requests a side either way.
CANDIDATE_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class Phase:
    """One planned phase: its role, the async arm's percentage, and its length."""

    name: str
    role: Role
    percent: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class PhaseWindow:
    """A phase as it ran: wall-clock start and end (unix seconds), and the service's RSS samples."""

    phase: Phase
    start: float
    end: float
    rss_bytes: tuple[int, ...] = ()

    def holds(self, t: float) -> bool:
        """Whether a request started at `t` belongs to this phase."""
        return self.start <= t < self.end


def control_percent(stage: float) -> float:
    """The stage before `stage` in the gate table (0 before the first): the control phases' percentage."""
    percents = [gate.percent for gate in DEFAULT_GATES.stages]
    if stage not in percents:
        raise ConfigError(f"stage={stage!r} is not a rollout stage; use one of {percents!r}")
    index = percents.index(stage)
    return percents[index - 1] if index > 0 else 0.0


def plan_phases(stage: float, duration_s: float, *, warmup_s: float, alternate: bool) -> list[Phase]:
    """The phases after the warm-up: four alternating ones, or one at `stage` when not `alternate`."""
    length = duration_s - warmup_s
    if length <= 0:
        raise ConfigError(f"duration_s={duration_s!r} leaves no time after the warm-up of {warmup_s:g} s")
    if not alternate:
        return [Phase("run", "candidate", stage, length)]
    control = control_percent(stage)
    pairs = len(ROLES) / 2
    plan = []
    for index, role in enumerate(ROLES, start=1):
        percent, share = (control, 1 - CANDIDATE_SHARE) if role == "control" else (stage, CANDIDATE_SHARE)
        plan.append(Phase(f"{role} {(index + 1) // 2} ({percent:g}%)", role, percent, length * share / pairs))
    return plan


@dataclass
class PhaseDriver:
    """Runs the phase plan against a live service: writes its flag file and samples its RSS.

    Args:
        flags_path: the flag file the service reads (`FileFlagSource`).
        phases: the plan; the first phase's percentage is written by `prepare`, before the service starts.
        warmup_s: seconds between `start` and the first phase.
        rss_every_s: how often the service's resident memory is sampled.
        serve_percent: the percentage written for every phase instead of the phase's own (an A/A run
            routes everyone to the async client and splits the calls by the phase's stage afterwards).
        clock: wall-clock time (unix seconds); events and Locust samples carry the same clock.
    """

    flags_path: Path
    phases: Sequence[Phase]
    warmup_s: float
    rss_every_s: float = 1.0
    serve_percent: float | None = None
    clock: Callable[[], float] = time.time
    windows: list[PhaseWindow] = field(default_factory=list, init=False)
    finished: threading.Event = field(default_factory=threading.Event, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def prepare(self) -> None:
        """Write the first phase's stage, so the service starts in it (and the warm-up runs at it)."""
        self._write(self.phases[0].percent)

    def start(
        self, pid: int | None, ready: Callable[[], bool] = lambda: True, ready_within_s: float = 60
    ) -> None:
        """Begin the warm-up once `ready()` (Locust's first call is in); `pid` is the service's (its RSS).

        Locust takes seconds to start on a busy machine; counting the warm-up from its first request keeps
        that start-up out of the phases. `finished` is set once the last phase has ended.
        """
        self._thread = threading.Thread(
            target=self._run, args=(pid, ready, ready_within_s), daemon=True, name="phases"
        )
        self._thread.start()

    def stop(self) -> list[PhaseWindow]:
        """Stop (early, if Locust ended first) and return the windows that ran."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.windows

    def _write(self, percent: float) -> None:
        served = percent if self.serve_percent is None else self.serve_percent
        FileFlagSource(self.flags_path).write(FlagState(enabled=True, percent=served))

    def _run(self, pid: int | None, ready: Callable[[], bool], ready_within_s: float) -> None:
        process = psutil.Process(pid) if pid is not None else None
        deadline = self.clock() + ready_within_s
        while not ready() and self.clock() < deadline:
            if self._stop.wait(0.1):
                return
        if self._stop.wait(self.warmup_s):
            return
        for phase in self.phases:
            self._write(phase.percent)
            start = self.clock()
            rss: list[int] = []
            while not self._stop.is_set() and self.clock() - start < phase.duration_s:
                if process is not None:
                    try:
                        rss.append(process.memory_info().rss)
                    except psutil.Error:
                        process = None  # the service is gone; Locust will see it
                self._stop.wait(min(self.rss_every_s, max(0.0, phase.duration_s - (self.clock() - start))))
            self.windows.append(PhaseWindow(phase, start, self.clock(), tuple(rss)))
            if self._stop.is_set():
                return
        self.finished.set()
