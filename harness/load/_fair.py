"""The load run's verdict: the statistical judge on the new arm, and on the service before/after.

Two comparisons, each at equal load and at the same moments, so neither is the other arm's doing:

- **The new arm against the legacy arm** inside the candidate phases (the target stage): the dispatcher's
  latency per call, and the share of calls the arm failed (a fallback counts: the new arm failed it).
  This is the only comparison with the power to see a regression of the new arm at a small stage: at
  10 % a service-level figure dilutes the new arm's effect tenfold.
- **The service in the candidate phases against the control phases** (target stage against current
  stage; what Locust saw): latency and failed requests. This catches what a per-arm figure cannot: the
  new arm starving the event loop, memory, or the other arm. It is also what keeps the old arm's own
  costs out of the new arm's verdict: when the legacy arm blocks the loop, moving users off it makes
  the candidate phases better, never worse.

Any FAIL rolls back; PROMOTE needs every judgement to PASS (the judge's confidence bound within the
gate's tolerance); anything else is HOLD, with the judge's estimate of the samples that would settle it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.load._figures import PhaseFigures, Tally
from llmfiles.rollout import Decision
from llmfiles.rollout._judge import JudgeVerdict, LatencyJudgement, RateJudgement, judge_latency, judge_rate

__all__ = ["Criteria", "Judgement", "RunVerdict", "judge_run"]


@dataclass(frozen=True, slots=True)
class Criteria:
    """What the load run judges against: the gate set applied, named in the report."""

    gate_set: str
    latency_tolerance: float
    max_error_rate: float
    min_samples: int
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
                "confidence": self.criteria.confidence,
            },
            "judgements": [j.to_dict() for j in self.judgements],
        }


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, JudgeVerdict) else value


def _pool(tallies: Sequence[Tally]) -> Tally:
    return Tally(tuple(s for t in tallies for s in t.latencies_s), sum(t.failures for t in tallies))


def _latency(name: str, control: Tally, candidate: Tally, criteria: Criteria) -> Judgement:
    if min(control.n, candidate.n) < criteria.min_samples:
        reason = (
            f"{candidate.n} candidate and {control.n} control samples; the gate set needs "
            f"{criteria.min_samples} of each"
        )
        return Judgement(name, JudgeVerdict.INCONCLUSIVE, reason, None)
    result = judge_latency(
        control.latencies_s,
        candidate.latencies_s,
        tolerance=criteria.latency_tolerance,
        confidence=criteria.confidence,
    )
    return Judgement(name, result.verdict, result.reason, result)


def _rate(name: str, control: Tally, candidate: Tally, criteria: Criteria) -> Judgement:
    if min(control.n, candidate.n) < criteria.min_samples:
        reason = (
            f"{candidate.n} candidate and {control.n} control calls; the gate set needs "
            f"{criteria.min_samples} of each"
        )
        return Judgement(name, JudgeVerdict.INCONCLUSIVE, reason, None)
    result = judge_rate(
        control.failures,
        control.n,
        candidate.failures,
        candidate.n,
        limit=criteria.max_error_rate,
        confidence=criteria.confidence,
    )
    return Judgement(name, result.verdict, result.reason, result)


def judge_run(phases: Sequence[PhaseFigures], criteria: Criteria) -> RunVerdict:
    """Judge a run's phases: the new arm in the candidate phases, then the service if there are controls."""
    candidates = [p for p in phases if p.window.phase.role == "candidate"]
    controls = [p for p in phases if p.window.phase.role == "control"]
    new_arm = _pool([p.arm("async").tally for p in candidates])
    old_arm = _pool([p.arm("legacy").tally for p in candidates])
    judgements = [
        _latency("new arm latency vs legacy arm", old_arm, new_arm, criteria),
        _rate("new arm failed calls vs legacy arm", old_arm, new_arm, criteria),
    ]
    if controls:
        after = _pool([p.service for p in candidates])
        before = _pool([p.service for p in controls])
        judgements += [
            _latency("service latency, candidate vs control phases", before, after, criteria),
            _rate("service failed requests, candidate vs control phases", before, after, criteria),
        ]
    verdicts = {j.verdict for j in judgements}
    if JudgeVerdict.FAIL in verdicts:
        decision = Decision.ROLLBACK
    elif verdicts == {JudgeVerdict.PASS}:
        decision = Decision.PROMOTE
    else:
        decision = Decision.HOLD
    return RunVerdict(decision, criteria, tuple(judgements))
