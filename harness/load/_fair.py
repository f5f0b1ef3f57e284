"""The load run's verdict: the statistical judge on the new arm, and on the service before/after.

Two comparisons, each at equal load and at the same moments, so neither is the other arm's doing:

- **The new arm against the legacy arm** inside the candidate phases (the target stage): the dispatcher's
  latency per call, and the share of calls the arm failed (a fallback counts: the new arm failed it).
  This is the only comparison with the power to see a regression of the new arm at a small stage: at
  10 % a service-level figure dilutes the new arm's effect tenfold.
- **The service in the candidate phases against the control phases** (target stage against current
  stage; what Locust saw): latency and the service's own failed requests. This catches what a per-arm
  figure cannot: the new arm starving the event loop, memory, or the other arm. It is also what keeps
  the old arm's own costs out of the new arm's verdict: when the legacy arm blocks the loop, moving users
  off it makes the candidate phases better, never worse. A provider's refusal an arm relayed (a 502) is
  that arm's failure, judged per arm; counted here, a legacy provider failing a fifth of its calls
  would leave every phase near 20 % failed, and a one-point limit on that spread takes thousands of
  requests a side to settle, so the old arm's trouble alone would hold the new arm back.

Any FAIL rolls back; PROMOTE needs every judgement to PASS (the judge's confidence bound within the
gate's tolerance); anything else is HOLD, with the judge's estimate of the samples that would settle it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.load._figures import PhaseFigures, Tally
from llmfiles.rollout import (
    Decision,
    JudgeVerdict,
    LatencyJudgement,
    RateJudgement,
    judge_latency,
    judge_rate,
)

__all__ = [
    "QUEUE_FACTOR",
    "QUEUE_SLACK_MS",
    "Criteria",
    "Judgement",
    "RunVerdict",
    "judge_run",
    "queue_check",
]

#: Locust's p50 may be at most this many times (the dispatcher's p50 + `QUEUE_SLACK_MS`): above it, what
#: Locust measured was mostly a queue in front of the arms.
QUEUE_FACTOR = 2.0
QUEUE_SLACK_MS = 50.0


@dataclass(frozen=True, slots=True)
class Criteria:
    """What the load run judges against, from the gate set applied (named in the report).

    Args:
        gate_set: the gate set's name.
        latency_tolerance: the largest latency ratio allowed (1.05: 5 % slower).
        max_error_rate: the largest rise in the failed share allowed (0.01: one point).
        min_samples: calls on each side before a judgement may FAIL (the rollback rules' minimum).
        min_to_pass: calls on the candidate side before a judgement may PASS (the stage's minimum).
        confidence: the judge's one-sided confidence.
    """

    gate_set: str
    latency_tolerance: float
    max_error_rate: float
    min_samples: int
    min_to_pass: int
    confidence: float = 0.98


@dataclass(frozen=True, slots=True)
class Judgement:
    """One comparison and the judge's answer."""

    name: str
    verdict: JudgeVerdict
    reason: str
    detail: LatencyJudgement | RateJudgement | None

    def to_dict(self) -> dict[str, Any]:
        detail = None if self.detail is None else {k: _plain(v) for k, v in asdict(self.detail).items()}
        return {"name": self.name, "verdict": str(self.verdict), "reason": self.reason, "detail": detail}


@dataclass(frozen=True, slots=True)
class RunVerdict:
    """The decision and every judgement behind it."""

    decision: Decision
    criteria: Criteria
    judgements: tuple[Judgement, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{j.name}: {j.verdict} ({j.reason})" for j in self.judgements)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": str(self.decision),
            "gate_set": self.criteria.gate_set,
            "criteria": {
                "latency_tolerance": self.criteria.latency_tolerance,
                "max_error_rate": self.criteria.max_error_rate,
                "min_samples": self.criteria.min_samples,
                "min_to_pass": self.criteria.min_to_pass,
                "confidence": self.criteria.confidence,
            },
            "judgements": [j.to_dict() for j in self.judgements],
        }


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, JudgeVerdict) else value


def _pool(tallies: Sequence[Tally]) -> Tally:
    return Tally(tuple(s for t in tallies for s in t.latencies_s), sum(t.failures for t in tallies))


_Compare = Callable[[str, Tally, Tally, "Criteria"], "Judgement"]


def _too_few(name: str, control: Tally, candidate: Tally, criteria: Criteria) -> Judgement | None:
    if min(control.n, candidate.n) >= criteria.min_samples:
        return None
    reason = (
        f"{candidate.n} candidate and {control.n} control calls; at least {criteria.min_samples} of each "
        "before the judge may decide"
    )
    return Judgement(name, JudgeVerdict.INCONCLUSIVE, reason, None)


def _settled(
    name: str, result: LatencyJudgement | RateJudgement, candidate: Tally, criteria: Criteria
) -> Judgement:
    """The judge's answer, except that a PASS needs the stage's minimum of candidate calls."""
    if result.verdict == JudgeVerdict.PASS and candidate.n < criteria.min_to_pass:
        reason = f"{result.reason}; but {candidate.n} candidate calls < the stage's {criteria.min_to_pass}"
        return Judgement(name, JudgeVerdict.INCONCLUSIVE, reason, result)
    return Judgement(name, result.verdict, result.reason, result)


def _latency(name: str, control: Tally, candidate: Tally, criteria: Criteria) -> Judgement:
    too_few = _too_few(name, control, candidate, criteria)
    if too_few is not None:
        return too_few
    result = judge_latency(
        control.latencies_s,
        candidate.latencies_s,
        tolerance=criteria.latency_tolerance,
        confidence=criteria.confidence,
    )
    return _settled(name, result, candidate, criteria)


def _rate(name: str, control: Tally, candidate: Tally, criteria: Criteria) -> Judgement:
    too_few = _too_few(name, control, candidate, criteria)
    if too_few is not None:
        return too_few
    result = judge_rate(
        control.failures,
        control.n,
        candidate.failures,
        candidate.n,
        limit=criteria.max_error_rate,
        confidence=criteria.confidence,
    )
    return _settled(name, result, candidate, criteria)


def queue_check(phases: Sequence[PhaseFigures]) -> dict[str, Any]:
    """Locust's p50 against the dispatcher's, over every phase: did the run measure arms or a queue?"""
    locust = [s for p in phases for s in p.service.latencies_s]
    dispatcher = [s for p in phases for arm in p.arms for s in arm.tally.latencies_s]
    if not locust or not dispatcher:
        return {"locust_p50_ms": None, "dispatcher_p50_ms": None, "bound_ms": None, "within": None}
    locust_p50 = float(np.median(locust) * 1000)
    dispatcher_p50 = float(np.median(dispatcher) * 1000)
    bound = QUEUE_FACTOR * (dispatcher_p50 + QUEUE_SLACK_MS)
    return {
        "locust_p50_ms": locust_p50,
        "dispatcher_p50_ms": dispatcher_p50,
        "bound_ms": bound,
        "within": locust_p50 <= bound,
    }


def _sustained(queue: dict[str, Any]) -> Judgement:
    name = "offered load sustained (Locust p50 <= 2 x (dispatcher p50 + 50 ms))"
    if queue["within"] is None:
        return Judgement(name, JudgeVerdict.INCONCLUSIVE, "no requests in any phase", None)
    reason = f"Locust p50 {queue['locust_p50_ms']:.0f} ms, bound {queue['bound_ms']:.0f} ms" + (
        "" if queue["within"] else "; the service queued requests: lower --rate"
    )
    return Judgement(name, JudgeVerdict.PASS if queue["within"] else JudgeVerdict.INCONCLUSIVE, reason, None)


def _before_after(
    name: str, compare: _Compare, pairs: Sequence[tuple[Tally, Tally]], criteria: Criteria, *, sustained: bool
) -> Judgement:
    """Control phases against candidate phases, pooled; a FAIL must hold in every pair and a steady service.

    A shared machine drifts: another job's burst can land in one phase, and a service that cannot keep
    up queues longer in every later phase. Neither is the stage's doing, so a FAIL stands only when the
    service kept up with the offered load and each control/candidate pair fails on its own too.
    """
    pooled = compare(name, _pool([b for b, _ in pairs]), _pool([a for _, a in pairs]), criteria)
    if pooled.verdict != JudgeVerdict.FAIL:
        return pooled
    if not sustained:
        reason = f"{pooled.reason}; not a FAIL: the service did not keep up, so later phases queued longer"
        return Judgement(name, JudgeVerdict.INCONCLUSIVE, reason, pooled.detail)
    each = [compare(name, before, after, criteria) for before, after in pairs]
    if all(j.verdict == JudgeVerdict.FAIL for j in each):
        return pooled
    reason = (
        f"{pooled.reason}; not a FAIL: only some control/candidate pairs fail "
        f"({', '.join(str(j.verdict) for j in each)}), which is drift, not the stage"
    )
    return Judgement(name, JudgeVerdict.INCONCLUSIVE, reason, pooled.detail)


def _steady(judgement: Judgement, *, sustained: bool) -> Judgement:
    """A latency FAIL stands only when the service kept up: in a queue, both arms wait behind each other."""
    if judgement.verdict != JudgeVerdict.FAIL or sustained:
        return judgement
    reason = (
        f"{judgement.reason}; not a FAIL: the service did not keep up, so its queue, not the arm, was timed"
    )
    return Judgement(judgement.name, JudgeVerdict.INCONCLUSIVE, reason, judgement.detail)


def _seen_by_users(arm: Judgement, seen: Sequence[Judgement]) -> Judgement:
    """With the legacy arm on the event loop, the new arm's latency FAIL stands only when the callers
    moved to it saw the service slow down.

    An old arm that runs on the loop freezes it for each of its uploads, and every async call in flight
    waits out the freeze: the dispatcher then times the old arm's blocking as the new arm's latency. So
    a per-arm gap rolls back only if the candidate phases were slower for the callers too: the
    service-level shift's lower bound above 1, pooled and in every control/candidate pair (the standard a
    service-level FAIL must meet, so that drift cannot stand in for the new arm). With the legacy arm in
    a pool of its own the arms are timed apart (on identical providers the async arm measured x1.046
    [0.979, 1.118] of the legacy arm), and this guard would hide a real regression: at 10 % the callers'
    figure dilutes even a tenfold slower arm below what the judge can see.
    """
    if arm.verdict != JudgeVerdict.FAIL or not seen:
        return arm
    lows = [j.detail.ci_low if isinstance(j.detail, LatencyJudgement) else 0.0 for j in seen]
    if min(lows) > 1.0:
        return arm
    reason = (
        f"{arm.reason}; not a FAIL: the callers did not see the candidate phases slower in every pair "
        f"(lower bounds {', '.join(f'x{low:.3f}' for low in lows)}), so the gap may be the legacy arm "
        "freezing the loop, not the new arm"
    )
    return Judgement(arm.name, JudgeVerdict.INCONCLUSIVE, reason, arm.detail)


#: A phase served the offered load when at least this share of the offered requests started in it.
SERVED_SHARE = 0.5


def _served(phases: Sequence[PhaseFigures], offered_per_s: float) -> Judgement:
    """Whether each phase served the paced load: a stalled candidate phase is a FAIL, a stalled control
    phase makes it the machine's doing (INCONCLUSIVE).

    A paced user sends its next request only after the last one answered, so a service that stops
    answering shows as requests that never started, not as failures or latencies in that phase.
    """
    name = f"offered load served (each phase >= {SERVED_SHARE:.0%} of {offered_per_s:g} requests/s)"
    short = [p for p in phases if p.per_s < SERVED_SHARE * offered_per_s]
    rates = ", ".join(f"{p.window.phase.name} {p.per_s:.1f}/s" for p in phases)
    if not short:
        return Judgement(name, JudgeVerdict.PASS, rates, None)
    if any(p.window.phase.role == "control" for p in short) or len(phases) < 2:
        return Judgement(name, JudgeVerdict.INCONCLUSIVE, f"{rates}: a control phase stalled too", None)
    return Judgement(name, JudgeVerdict.FAIL, f"{rates}: only candidate phases stalled", None)


def judge_run(
    phases: Sequence[PhaseFigures],
    criteria: Criteria,
    *,
    offered_per_s: float | None = None,
    legacy_on_loop: bool = False,
) -> RunVerdict:
    """Judge a run's phases: the new arm in the candidate phases, then the service if there are controls.

    `offered_per_s` is the paced load's rate (None for unpaced scenarios): each phase must serve it.
    `legacy_on_loop` says the legacy arm ran on the service's event loop, freezing it (`_seen_by_users`).
    """
    candidates = [p for p in phases if p.window.phase.role == "candidate"]
    controls = [p for p in phases if p.window.phase.role == "control"]
    new_arm = _pool([p.arm("async").tally for p in candidates])
    old_arm = _pool([p.arm("legacy").tally for p in candidates])
    sustained = _sustained(queue_check(phases))
    steady = sustained.verdict == JudgeVerdict.PASS
    arm_latency = _steady(
        _latency("new arm latency vs legacy arm", old_arm, new_arm, criteria), sustained=steady
    )
    judgements = [_rate("new arm failed calls vs legacy arm", old_arm, new_arm, criteria)]
    if controls:
        pairs = [(before.service, after.service) for before, after in zip(controls, candidates, strict=False)]
        own = [
            (before.service_own, after.service_own)
            for before, after in zip(controls, candidates, strict=False)
        ]
        service_latency = _before_after(
            "service latency, candidate vs control phases", _latency, pairs, criteria, sustained=steady
        )
        judgements += [
            service_latency,
            _before_after(
                "service's own failed requests (not a provider's refusal an arm relayed), candidate vs "
                "control phases",
                _rate,
                own,
                criteria,
                sustained=steady,
            ),
        ]
        name = "service latency, candidate vs control phases"
        seen = [
            _latency(name, _pool([b for b, _ in pairs]), _pool([a for _, a in pairs]), criteria),
            *(_latency(name, before, after, criteria) for before, after in pairs),
        ]
        if legacy_on_loop:
            arm_latency = _seen_by_users(arm_latency, seen)
    judgements.insert(0, arm_latency)
    judgements.append(sustained)
    if offered_per_s is not None and controls:
        judgements.append(_served(phases, offered_per_s))
    verdicts = {j.verdict for j in judgements}
    if JudgeVerdict.FAIL in verdicts:
        decision = Decision.ROLLBACK
    elif verdicts == {JudgeVerdict.PASS}:
        decision = Decision.PROMOTE
    else:
        decision = Decision.HOLD
    return RunVerdict(decision, criteria, tuple(judgements))
