"""Per-arm figures over a sliding time window: what the gates judge.

Percentiles use the nearest-rank definition (the smallest sample with at least p % of the samples at or
below it; numpy's ``method="inverted_cdf"``): every reported latency is one a caller really saw, and a
p99 over 100 samples is the slowest but one. Latency percentiles cover successful calls only, so a
brownout of instant failures cannot make an arm look fast; failures show in the rates instead.

A call belongs to the window by the time it finished (`Event.finished_at`), judged by the injected
clock, so tests drive windows without sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from llmfiles._errors import ConfigError
from llmfiles.observe._event import Arm, ErrorKind, Event

Clock = Callable[[], float]

_COMPARED = ("success_rate", "error_rate", "timeout_rate", "p50_s", "p95_s", "p99_s", "throughput_per_s")


def percentile(samples: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of `samples` (need not be sorted); None when there are none.

    Raises:
        ConfigError: `p` is outside [0, 100].
    """
    if not 0 <= p <= 100:
        raise ConfigError(f"p={p!r} must be within [0, 100]")
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One arm's figures over a window. Rates are fractions of `count` (0.0 when there are no calls).

    `error_rate` counts calls the caller saw fail; `fallback_rate` calls the legacy arm rescued; neither
    is a success of this arm, so ``success_rate + error_rate + fallback_rate == 1`` when count > 0.
    `timeouts` and `critical_errors` (class name -> calls) count events by their recorded `ErrorKind`,
    never by what the class is called.
    """

    arm: Arm
    window_s: float
    count: int
    successes: int
    failures: int
    fallbacks: int
    timeouts: int
    bytes: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    throughput_per_s: float
    error_types: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    critical_errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def _share(self, part: int) -> float:
        # 0.0 for an empty window rather than an error: callers judge `count` (min samples) first.
        return part / self.count if self.count else 0.0

    @property
    def success_rate(self) -> float:
        """Successes over all calls in the window."""
        return self._share(self.successes)

    @property
    def error_rate(self) -> float:
        """Failures (the caller got an exception) over all calls."""
        return self._share(self.failures)

    @property
    def fallback_rate(self) -> float:
        """Calls the legacy arm rescued over all calls."""
        return self._share(self.fallbacks)

    @property
    def timeout_rate(self) -> float:
        """Calls that ended in a timeout (failed or rescued) over all calls."""
        return self._share(self.timeouts)

    def figures(self) -> dict[str, float | int | None]:
        """The summary as a flat mapping, for reports, tables and gate verdicts."""
        return {
            "count": self.count,
            "success_rate": self.success_rate,
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "fallback_rate": self.fallback_rate,
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "p99_s": self.p99_s,
            "throughput_per_s": self.throughput_per_s,
            "bytes": self.bytes,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """The two arms side by side over the same window.

    `relative` maps each compared figure to ``(candidate - control) / control``, None where the control
    figure is missing or zero; a p95 of -0.4 means the candidate is 40 % faster.
    """

    candidate: ArmSummary
    control: ArmSummary
    relative: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class LatencySamples:
    """The latencies of each arm's successful calls in a window: what the judge compares.

    A `Comparison` carries percentiles only; the judge needs the samples themselves.
    """

    control: Sequence[float]
    candidate: Sequence[float]

    @classmethod
    def from_events(
        cls, events: Iterable[Event], *, candidate: Arm = "async", control: Arm = "legacy"
    ) -> LatencySamples:
        """The successful calls' durations per arm (as the recorder's percentiles take them)."""
        durations: dict[Arm, list[float]] = {candidate: [], control: []}
        for event in events:
            if event.outcome == "success" and event.arm in durations:
                durations[event.arm].append(event.duration_s)
        return cls(control=tuple(durations[control]), candidate=tuple(durations[candidate]))


class ArmFigures(Protocol):
    """Where a controller reads the arms' figures over a window ending now.

    This process's `Recorder` is one; a fleet's Prometheus reader (`llmfiles.fleet.PrometheusFigures`)
    is another, so the gates and the judge cannot tell which one fed them.
    """

    @property
    def window_s(self) -> float:
        """The longest window that may be asked for."""
        ...

    def compare(self, *, window_s: float | None = None) -> Comparison:
        """Candidate and control side by side over the last `window_s` seconds."""
        ...

    def latency_samples(self, *, window_s: float | None = None) -> LatencySamples:
        """Each arm's successful calls' latencies over the same window, for the judge."""
        ...


def compare_summaries(candidate: ArmSummary, control: ArmSummary) -> Comparison:
    """The two arms side by side, with the relative change of each compared figure.

    Every figure source (this process's `Recorder`, a fleet's Prometheus) builds its `Comparison` here,
    so the gates judge the same shape whichever one fed them.
    """
    cand, ctrl = candidate.figures(), control.figures()
    relative: dict[str, float | None] = {}
    for name in _COMPARED:
        new, old = cand[name], ctrl[name]
        relative[name] = None if new is None or not old else (new - old) / old
    return Comparison(candidate=candidate, control=control, relative=MappingProxyType(relative))


class Recorder:
    """Keeps recent events and summarises them per arm; an event sink (`record`) for the dispatcher.

    Args:
        window_s: the longest window kept; `summary` and `compare` may ask for a shorter one.
        clock: wall-clock seconds, the same clock the dispatcher stamps events with.
        max_events: a hard cap on memory; the oldest events go first when it is reached.
        candidate: the arm under trial; `compare` reports it against `control`.
    """

    def __init__(
        self,
        *,
        window_s: float = 300.0,
        clock: Clock = time.time,
        max_events: int = 1_000_000,
        candidate: Arm = "async",
        control: Arm = "legacy",
    ) -> None:
        if not window_s > 0:
            raise ConfigError(f"window_s={window_s!r} must be > 0 seconds")
        if max_events < 1:
            raise ConfigError(f"max_events={max_events!r} must be >= 1")
        self.window_s = window_s
        self.candidate: Arm = candidate
        self.control: Arm = control
        self._clock = clock
        self._started = clock()
        self._events: deque[Event] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def record(self, event: Event) -> None:
        """Add one event (thread-safe)."""
        with self._lock:
            self._events.append(event)
            self._prune(self._clock() - self.window_s)

    def extend(self, events: Iterable[Event]) -> None:
        """Add many events, e.g. read back from an `EventLog`."""
        for event in events:
            self.record(event)

    def events(self, *, window_s: float | None = None) -> list[Event]:
        """Events that finished within the last `window_s` seconds, ``(now - window_s, now]``.

        The default is the recorder's whole window.
        """
        span = self._span(window_s)
        with self._lock:
            since = self._clock() - span
            return [event for event in self._events if event.finished_at > since]

    def summary(self, arm: Arm, *, window_s: float | None = None) -> ArmSummary:
        """Figures for one arm over the last `window_s` seconds."""
        return self._summarise(arm, self.events(window_s=window_s), self._span(window_s))

    def compare(self, *, window_s: float | None = None) -> Comparison:
        """Candidate and control over the same window, with the relative change of each figure."""
        span = self._span(window_s)
        events = self.events(window_s=window_s)
        return compare_summaries(
            self._summarise(self.candidate, events, span), self._summarise(self.control, events, span)
        )

    def latency_samples(self, *, window_s: float | None = None) -> LatencySamples:
        """Each arm's successful calls' latencies over the last `window_s` seconds."""
        return LatencySamples.from_events(
            self.events(window_s=window_s), candidate=self.candidate, control=self.control
        )

    def _span(self, window_s: float | None) -> float:
        if window_s is None:
            return self.window_s
        if not 0 < window_s <= self.window_s:
            raise ConfigError(f"window_s={window_s!r} must be > 0 and <= the recorder's {self.window_s!r}")
        return window_s

    def _summarise(self, arm: Arm, events: Sequence[Event], span: float) -> ArmSummary:
        mine = [event for event in events if event.arm == arm]
        outcomes = Counter(event.outcome for event in mine)
        latencies = [event.duration_s for event in mine if event.outcome == "success"]
        errors = Counter(event.error_type for event in mine if event.error_type is not None)
        kinds = Counter(event.error_kind for event in mine if event.error_kind is not None)
        critical = Counter(
            event.error_type or "?" for event in mine if event.error_kind is ErrorKind.CRITICAL
        )
        # A young recorder (or a log replayed into one) has not seen a whole window yet: divide by the
        # time actually covered, or throughput would be understated.
        first = min([self._started, *(event.ts for event in events)])
        covered = max(min(span, self._clock() - first), 1e-9)
        return ArmSummary(
            arm=arm,
            window_s=span,
            count=len(mine),
            successes=outcomes["success"],
            failures=outcomes["failure"],
            fallbacks=outcomes["fallback"],
            timeouts=kinds[ErrorKind.TIMEOUT],
            bytes=sum(event.bytes for event in mine),
            p50_s=percentile(latencies, 50),
            p95_s=percentile(latencies, 95),
            p99_s=percentile(latencies, 99),
            throughput_per_s=len(mine) / covered,
            error_types=MappingProxyType(dict(errors)),
            critical_errors=MappingProxyType(dict(critical)),
        )

    def _prune(self, since: float) -> None:
        # Events arrive roughly in finishing order; stop at the first recent one rather than scan all.
        while self._events and self._events[0].finished_at <= since:
            self._events.popleft()
