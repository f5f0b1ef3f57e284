"""Stage gates as data, and `evaluate`: PROMOTE, HOLD or ROLLBACK, with the reasons and the figures.

The production table (`DEFAULT_GATES`) is the rollout documents':

=====  =========  ==================  ========  ===========  ========
stage  success >=  latency <= base x  errors <=  min uploads  min soak
=====  =========  ==================  ========  ===========  ========
1%     99.5 %     1.10                0.5 %     100          24 h
10%    99.0 %     1.05                1.0 %     500          48 h
50%    98.5 %     1.02                1.5 %     2000         72 h
100%   98.0 %     1.00                2.0 %     5000         1 week
=====  =========  ==================  ========  ===========  ========

Automatic rollback (`RollbackRules`), absolute: success < 95 %, errors > 5 %, any critical error, or RSS
more than 20 % over the stage's baseline. Manual review (HOLD with the reason): success within
[95 %, 97 %) for 30 minutes or more, or p95 latency over 1.2 x the baseline.

The stage's own criteria go through the statistical judge (`llmfiles.rollout._judge`), candidate
against control over the same window, at the rules' `confidence`:

- latency: the Hodges-Lehmann ratio of the candidate's successful calls' latencies to the control's,
  against the stage's latency ratio;
- success: the candidate's calls that were not its own successes (failed or rescued by the legacy arm)
  minus the control's failed calls, against ``1 - min_success`` (the stage's 1 % at 99 %);
- errors and timeouts: the rate of calls the caller saw fail, and of calls that timed out, minus the
  control's, each against the stage's error limit.

The limits read as "no more than this much worse than the control arm in the same window": both arms
see the same provider, so a provider's bad day moves both and only the arm's own doing remains. With no
control calls (the 100 % stage) rates are judged against the limits as absolute rates, and latency
against the stage baseline's p95 (`GateContext.baseline_p95_s`), which can only HOLD.

Each look is judged at `look_confidence`: the rules' confidence from the stage's minimum uploads on,
stricter before (O'Brien-Fleming), so that checking every interval does not multiply false rollbacks.
A judge FAIL on latency or errors is a ROLLBACK (callers waited or failed); on success or timeouts, calls
the legacy arm rescued, it is a HOLD, and the absolute rules and the review band decide on a rollback as
the documents say. INCONCLUSIVE is a HOLD saying how many more samples would likely settle it. PROMOTE
needs every judgement PASS, the stage's minimum uploads and its soak. Too few samples for the
rules' `min_samples` cannot trigger a rollback (a critical error or a memory spike still does). Absolute
rates are compared as exact fractions, so 9499/10000 is below 95 % and 9500/10000 is not.

Two gate sets: `DEFAULT_GATES` ("production": the table above), and `LOAD_RUN_GATES` ("load-run"):
the same criteria through the same judge, with a minimum of `LOAD_RUN_MIN_UPLOADS` candidate calls a
stage that a two-minute load run reaches, soak shrunk to the run's length (`GateTable.with_soak`), no
p95 review (a few hundred calls' p95 is the noise the judge exists to see through), and a latency
tolerance of at least `LOAD_RUN_LATENCY_TOLERANCE`. A production stage judges a 2-5 % slowdown over
hundreds to thousands of calls and days; a two-minute run has a few hundred candidate calls, whose 98 %
interval on the latency ratio spans about +-8 % at the providers' spread (a lognormal sigma of 0.6), so
it could bound the ratio under 1.05 only by luck. The load run is therefore the gross-regression
screen before a stage (a 50 % slowdown, a brownout, errors), and the stage's own tolerance is the
production controller's to enforce. Every verdict names the set it applied (`GateVerdict.gate_set`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scipy import special

from llmfiles._errors import ConfigError
from llmfiles.observe import CRITICAL_ERRORS, Comparison, LatencySamples
from llmfiles.rollout._judge import JudgeVerdict, LatencyJudgement, RateJudgement, judge_latency, judge_rate

OFF = "off"
PRODUCTION = "production"
LOAD_RUN = "load-run"

#: Candidate calls a stage needs in a load run before PROMOTE: what a two-minute run reaches at the 10 %
#: stage on a two-core machine. The judge may still want more (its HOLD says how many).
LOAD_RUN_MIN_UPLOADS = 200
#: The least latency ratio a load run tolerates (a stage's own, if wider): the slowdown a two-minute run
#: can rule out. Measured: at 40 requests/s on a two-core machine the 10 % stage's candidate phases hold
#: about 260 async calls against 2000 legacy ones, and the judge's 98 % interval on their ratio was
#: [0.994, 1.166] around 1.076.
LOAD_RUN_LATENCY_TOLERANCE = 1.20

_HOUR = 3600.0


class Decision(StrEnum):
    PROMOTE = "PROMOTE"
    HOLD = "HOLD"
    ROLLBACK = "ROLLBACK"


@dataclass(frozen=True, slots=True)
class StageGate:
    """What a stage must show before the next one.

    Args:
        name: ``"1%"``, ``"10%"`` ...
        percent: keys routed to the async arm during the stage.
        min_success: the candidate's success rate must be at least this (fraction, 0.995).
        max_latency_ratio: candidate p95 over baseline p95 must be at most this.
        max_error_rate: calls failing for the caller must be at most this fraction.
        min_uploads: candidate calls in the window before any PROMOTE.
        min_soak_s: seconds the stage must have run.
    """

    name: str
    percent: float
    min_success: float
    max_latency_ratio: float
    max_error_rate: float
    min_uploads: int
    min_soak_s: float

    def __post_init__(self) -> None:
        for name in ("min_success", "max_error_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"stage {self.name!r}: {name}={value!r} must be a fraction within [0, 1]")
        if not 0 < self.percent <= 100:
            raise ConfigError(f"stage {self.name!r}: percent={self.percent!r} must be within (0, 100]")
        if self.max_latency_ratio <= 0 or self.min_uploads < 1 or self.min_soak_s < 0:
            raise ConfigError(
                f"stage {self.name!r}: max_latency_ratio={self.max_latency_ratio!r} must be > 0, "
                f"min_uploads={self.min_uploads!r} >= 1, min_soak_s={self.min_soak_s!r} >= 0"
            )


@dataclass(frozen=True, slots=True)
class RollbackRules:
    """When to roll back at once, and when to hold for a human.

    Args:
        min_success: below this success rate, roll back.
        max_error_rate: above this error rate, roll back.
        max_memory_growth: RSS over the stage baseline, minus one, above which to roll back (0.20).
        critical_errors: more error class names that roll back on the first occurrence (errors of other
            libraries). llmfiles' own critical errors (`CRITICAL_ERRORS`: corrupted data, a name that
            tried to escape its directory) are recognised by type where they were raised, and always
            roll back whatever this holds.
        min_samples: candidate calls needed before the rate rules may roll back.
        review_band: success rates in [low, high) call for a human once they last `review_after_s`.
        review_after_s: how long the review band must last.
        review_latency_ratio: p95 over baseline above which a human should look; None turns the rule
            off (the load-run set).
        confidence: of the statistical judge's bounds (one-sided each): 0.98 FAILs an arm exactly at a
            stage's limit 2 % of the time at one look; see docs/JUDGE.md for a whole stage's checks.
    """

    min_success: float = 0.95
    max_error_rate: float = 0.05
    max_memory_growth: float = 0.20
    critical_errors: frozenset[str] = frozenset(error.__name__ for error in CRITICAL_ERRORS)
    min_samples: int = 20
    review_band: tuple[float, float] = (0.95, 0.97)
    review_after_s: float = 30 * 60.0
    review_latency_ratio: float | None = 1.2
    confidence: float = 0.98

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1:
            raise ConfigError(f"rules: confidence={self.confidence!r} must be within (0.5, 1), e.g. 0.98")


@dataclass(frozen=True, slots=True)
class GateTable:
    """The stages in order and the rollback rules, under a name verdicts report (`PRODUCTION`, `LOAD_RUN`).

    `DEFAULT_GATES` is the rollout documents' table, `LOAD_RUN_GATES` the load runs' set.
    """

    stages: tuple[StageGate, ...]
    rules: RollbackRules = field(default_factory=RollbackRules)
    name: str = PRODUCTION

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if not names or len(set(names)) != len(names) or OFF in names:
            raise ConfigError(f"stages={names!r} must be non-empty, unique, and not named {OFF!r}")
        percents = [stage.percent for stage in self.stages]
        if percents != sorted(percents):
            raise ConfigError(f"stages={names!r} must be in increasing percent order, got {percents!r}")

    def stage(self, name: str) -> StageGate:
        """The gate named `name`; `ConfigError` naming the known ones otherwise."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        known = ", ".join([OFF, *(stage.name for stage in self.stages)])
        raise ConfigError(f"stage={name!r} is unknown; use one of: {known}")

    def next_stage(self, name: str) -> StageGate | None:
        """The stage after `name` (the first one after ``"off"``), None after the last."""
        if name == OFF:
            return self.stages[0]
        index = self.stages.index(self.stage(name))
        return self.stages[index + 1] if index + 1 < len(self.stages) else None

    def with_soak(self, seconds: float) -> GateTable:
        """The same table with every stage's soak set to `seconds` (load runs shrink soak to their length)."""
        return replace(self, stages=tuple(replace(stage, min_soak_s=seconds) for stage in self.stages))

    @classmethod
    def from_toml(cls, path: Path | str) -> GateTable:
        """Load a table: ``[[stages]]`` entries with `StageGate`'s fields, optional ``[rules]`` and ``name``.

        Raises:
            ConfigError: unreadable file, unknown or missing keys, or out-of-range values.
        """
        source = Path(path)
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"gates={str(source)!r} cannot be read: {exc}") from exc
        return cls.from_mapping(data, origin=f"gates={str(source)!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "gates") -> GateTable:
        """Build from plain data (parsed TOML or JSON); see `from_toml`."""
        try:
            stages = tuple(StageGate(**entry) for entry in data.get("stages", ()))
            raw_rules = dict(data.get("rules", {}))
            for name in ("critical_errors", "review_band"):
                if name in raw_rules:
                    raw_rules[name] = (frozenset if name == "critical_errors" else tuple)(raw_rules[name])
            return cls(
                stages=stages, rules=RollbackRules(**raw_rules), name=str(data.get("name", PRODUCTION))
            )
        except TypeError as exc:
            known = ", ".join(f.name for f in fields(StageGate))
            raise ConfigError(f"{origin}: {exc}; stage keys are: {known}") from exc
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc


DEFAULT_GATES = GateTable(
    stages=(
        StageGate("1%", 1.0, 0.995, 1.10, 0.005, 100, 24 * _HOUR),
        StageGate("10%", 10.0, 0.990, 1.05, 0.010, 500, 48 * _HOUR),
        StageGate("50%", 50.0, 0.985, 1.02, 0.015, 2000, 72 * _HOUR),
        StageGate("100%", 100.0, 0.980, 1.00, 0.020, 5000, 7 * 24 * _HOUR),
    )
)

LOAD_RUN_GATES = GateTable(
    stages=tuple(
        replace(
            stage,
            min_uploads=LOAD_RUN_MIN_UPLOADS,
            min_soak_s=0.0,
            max_latency_ratio=max(stage.max_latency_ratio, LOAD_RUN_LATENCY_TOLERANCE),
        )
        for stage in DEFAULT_GATES.stages
    ),
    rules=RollbackRules(review_latency_ratio=None),
    name=LOAD_RUN,
)


@dataclass(frozen=True, slots=True)
class GateContext:
    """What a window alone cannot tell: history the controller keeps.

    Args:
        soak_s: how long the stage has run.
        memory_growth: RSS over the stage baseline, minus one; None when not sampled.
        review_band_s: how long the success rate has stayed in the review band (0 when it is not in it).
        baseline_p95_s: the stage's latency baseline, used when the window has no control-arm latency.
    """

    soak_s: float = 0.0
    memory_growth: float | None = None
    review_band_s: float = 0.0
    baseline_p95_s: float | None = None


Judgement = LatencyJudgement | RateJudgement


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """The answer, and the evidence: `reasons` in words, `figures` in numbers, the judge's `judgements`.

    `gate_set` names the table applied (``"production"`` or ``"load-run"``); `judgements` maps
    ``"latency"``, ``"success"``, ``"errors"``, ``"timeouts"`` to the judge's answers (empty when the
    rollout is off).
    """

    stage: str
    decision: Decision
    reasons: tuple[str, ...]
    figures: Mapping[str, float | int | None]
    gate_set: str = PRODUCTION
    judgements: Mapping[str, Judgement] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "decision": self.decision.value,
            "gate_set": self.gate_set,
            "reasons": list(self.reasons),
            "figures": dict(self.figures),
            "judgements": {
                name: {**asdict(j), "verdict": j.verdict.value} for name, j in self.judgements.items()
            },
        }


def _frac(value: float) -> Fraction:
    # Through str() so 0.995 means exactly 995/1000, not the binary float nearest to it.
    return Fraction(str(value))


# Judge FAILs that roll back: callers waited longer, or saw the call fail. A worse success or timeout rate
# means calls the legacy arm rescued: callers were served, so the documents' absolute rules (success
# < 95 %) and the review band decide on a rollback, and the stage's limit holds the promotion.
_ROLLS_BACK = ("latency", "errors")


#: The strictest confidence a look is judged at: 1 - 1e-12, a z of about 7 (the judge needs it below 1).
_MAX_LOOK_CONFIDENCE = 1 - 1e-12


def look_confidence(confidence: float, count: int, min_uploads: int) -> float:
    """The confidence one look at `count` candidate calls is judged at, before the stage has `min_uploads`.

    The controller looks at a stage every interval from its first calls on, and the stage so far is the
    same data with a few calls added, so a fixed confidence at every look would spend the stage's error
    many times over (seven in a hundred A/A stages rolled back at 98 % by simulation). As in
    O'Brien-Fleming's group-sequential boundaries, a look at the fraction ``t = count / min_uploads`` of
    the stage's planned calls needs ``z / sqrt(t)`` where the full stage needs ``z``: early looks FAIL only
    on overwhelming evidence (a brownout's 10x latency still fails within a few dozen calls), and from
    the stage's minimum on the configured `confidence` applies.
    """
    if count >= min_uploads:
        return confidence
    if count <= 0:
        return _MAX_LOOK_CONFIDENCE
    z = float(special.ndtri(confidence)) / math.sqrt(count / min_uploads)
    return min(float(special.ndtr(z)), _MAX_LOOK_CONFIDENCE)


def _rates(stage: StageGate, window: Comparison, confidence: float) -> dict[str, RateJudgement]:
    cand, ctrl = window.candidate, window.control
    # Fractions through str() so 0.99 gives a limit of exactly 0.01, not 0.010000000000000009.
    success_limit = float(1 - _frac(stage.min_success))
    pairs = {
        "success": (ctrl.count - ctrl.successes, cand.count - cand.successes, success_limit),
        "errors": (ctrl.failures, cand.failures, stage.max_error_rate),
        "timeouts": (ctrl.timeouts, cand.timeouts, stage.max_error_rate),
    }
    return {
        name: judge_rate(control, ctrl.count, candidate, cand.count, limit=limit, confidence=confidence)
        for name, (control, candidate, limit) in pairs.items()
    }


def evaluate(
    stage: StageGate,
    window: Comparison,
    *,
    latencies: LatencySamples,
    rules: RollbackRules | None = None,
    context: GateContext | None = None,
    gate_set: str = PRODUCTION,
) -> GateVerdict:
    """Judge one stage on one window (see the module docstring for the rules).

    `latencies` are the same window's successful calls per arm (`LatencySamples.from_events` over the
    recorder's events); `gate_set` is the name of the table `stage` and `rules` come from.
    """
    rules = rules if rules is not None else RollbackRules()
    context = context if context is not None else GateContext()
    cand = window.candidate
    count = cand.count
    success = Fraction(cand.successes, count) if count else Fraction(0)
    errors = Fraction(cand.failures, count) if count else Fraction(0)
    baseline = window.control.p95_s if window.control.p95_s else context.baseline_p95_s
    ratio = cand.p95_s / baseline if cand.p95_s is not None and baseline else None
    critical = {name: n for name, n in cand.error_types.items() if name in rules.critical_errors}
    critical.update(cand.critical_errors)
    confidence = look_confidence(rules.confidence, count, stage.min_uploads)
    latency = (
        judge_latency(
            latencies.control, latencies.candidate, tolerance=stage.max_latency_ratio, confidence=confidence
        )
        if latencies.control
        else None
    )
    judgements: dict[str, Judgement] = {} if latency is None else {"latency": latency}
    judgements.update(_rates(stage, window, confidence))
    undecided = [j.more_samples_needed for j in judgements.values() if j.more_samples_needed is not None]
    figures: dict[str, float | int | None] = {
        **cand.figures(),
        "baseline_p95_s": baseline,
        "latency_ratio": ratio,
        "latency_shift": None if latency is None else latency.shift_ratio,
        "latency_shift_low": None if latency is None else latency.ci_low,
        "latency_shift_high": None if latency is None else latency.ci_high,
        "latency_p_value": None if latency is None else latency.p_value,
        "more_samples_needed": max(undecided, default=None),
        "critical_errors": sum(critical.values()),
        "memory_growth": context.memory_growth,
        "soak_s": context.soak_s,
        "review_band_s": context.review_band_s,
    }

    def verdict(decision: Decision, reasons: list[str]) -> GateVerdict:
        return GateVerdict(
            stage.name,
            decision,
            tuple(reasons),
            MappingProxyType(figures),
            gate_set,
            MappingProxyType(judgements),
        )

    rollback: list[str] = []
    if critical:
        rollback.append(f"critical errors: {dict(sorted(critical.items()))!r}")
    if context.memory_growth is not None and context.memory_growth > rules.max_memory_growth:
        rollback.append(
            f"memory {context.memory_growth:+.1%} over the stage baseline > {rules.max_memory_growth:.0%}"
        )
    judged = count >= rules.min_samples
    if judged:
        if success < _frac(rules.min_success):
            rollback.append(f"success {float(success):.2%} < {rules.min_success:.2%}")
        if errors > _frac(rules.max_error_rate):
            rollback.append(f"errors {float(errors):.2%} > {rules.max_error_rate:.2%}")
        rollback += [
            f"{name} FAIL: {j.reason}"
            for name, j in judgements.items()
            if name in _ROLLS_BACK and j.verdict is JudgeVerdict.FAIL
        ]
    if rollback:
        return verdict(Decision.ROLLBACK, rollback)

    hold: list[str] = []
    low, high = rules.review_band
    if count and _frac(low) <= success < _frac(high) and context.review_band_s >= rules.review_after_s:
        hold.append(
            f"manual review: success {float(success):.2%} within [{low:.0%}, {high:.0%}) for "
            f"{context.review_band_s / 60:.0f} min"
        )
    if rules.review_latency_ratio is not None and ratio is not None and ratio > rules.review_latency_ratio:
        hold.append(f"manual review: p95 latency {ratio:.2f}x baseline > {rules.review_latency_ratio}x")
    if count < stage.min_uploads:
        hold.append(f"too few uploads: {count} < {stage.min_uploads}")
    if context.soak_s < stage.min_soak_s:
        hold.append(f"soak {context.soak_s / _HOUR:.1f} h < {stage.min_soak_s / _HOUR:.1f} h")
    for name, j in judgements.items():
        if j.verdict is JudgeVerdict.INCONCLUSIVE:
            hold.append(f"{name}: {j.reason}")
        elif j.verdict is JudgeVerdict.FAIL and name not in _ROLLS_BACK:
            hold.append(f"{name} FAIL, calls rescued but over the stage's limit: {j.reason}")
        elif j.verdict is JudgeVerdict.FAIL:  # a FAIL that could not roll back: too few calls
            hold.append(
                f"{name} FAIL on {count} < {rules.min_samples} calls, too few to roll back: {j.reason}"
            )
    if latency is None:
        if cand.p95_s is None:
            hold.append("no latency figure: the async arm has no successful calls in the window")
        elif ratio is None:
            hold.append("no latency baseline: the control arm has no successful calls in the window")
        elif ratio > stage.max_latency_ratio:
            hold.append(f"p95 latency {ratio:.2f}x the stage baseline > {stage.max_latency_ratio}x")
    if hold:
        return verdict(Decision.HOLD, hold)
    met = f"all gates of stage {stage.name} met over {count} uploads ({gate_set} gates)"
    return verdict(Decision.PROMOTE, [met, *(f"{name}: {j.reason}" for name, j in judgements.items())])
