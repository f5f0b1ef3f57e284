"""Stage gates as data, and `evaluate`: PROMOTE, HOLD or ROLLBACK, with the reasons and the figures.

The default table is DESIGN.md's:

=====  =========  ==================  ========  ===========  ========
stage  success >=  latency <= base x  errors <=  min uploads  min soak
=====  =========  ==================  ========  ===========  ========
1%     99.5 %     1.10                0.5 %     100          24 h
10%    99.0 %     1.05                1.0 %     500          48 h
50%    98.5 %     1.02                1.5 %     2000         72 h
100%   98.0 %     1.00                2.0 %     5000         1 week
=====  =========  ==================  ========  ===========  ========

Automatic rollback (`RollbackRules`): success < 95 %, errors > 5 %, any critical error, or RSS more than
20 % over the stage's baseline. Manual review (HOLD with the reason): success within [95 %, 97 %) for 30
minutes or more, or p95 latency over 1.2 x the baseline.

How figures are read: "success" is the candidate arm's own successes over its calls (a call the legacy
arm rescued is not one); "errors" are calls whose caller saw an exception; latency is the candidate's
p95 over the baseline's (the control arm in the same window, else the stage baseline in the context).
Rates are compared as exact fractions, so 9949/10000 is below 99.5 % and 9950/10000 is not. Too few
samples is HOLD, never PROMOTE, and too few for the rollback rules' `min_samples` cannot trigger a
rate-based rollback (a critical error or a memory spike still does).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

from llmfiles._errors import ConfigError
from llmfiles.observe import CRITICAL_ERRORS, Comparison

OFF = "off"

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
        review_latency_ratio: p95 over baseline above which a human should look.
    """

    min_success: float = 0.95
    max_error_rate: float = 0.05
    max_memory_growth: float = 0.20
    critical_errors: frozenset[str] = frozenset(error.__name__ for error in CRITICAL_ERRORS)
    min_samples: int = 20
    review_band: tuple[float, float] = (0.95, 0.97)
    review_after_s: float = 30 * 60.0
    review_latency_ratio: float = 1.2


@dataclass(frozen=True, slots=True)
class GateTable:
    """The stages in order and the rollback rules; `DEFAULT_GATES` is DESIGN.md's table."""

    stages: tuple[StageGate, ...]
    rules: RollbackRules = field(default_factory=RollbackRules)

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
        """Load a table: ``[[stages]]`` entries with `StageGate`'s fields, optional ``[rules]``.

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
            return cls(stages=stages, rules=RollbackRules(**raw_rules))
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


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """The answer, and the evidence: `reasons` in words, `figures` in numbers."""

    stage: str
    decision: Decision
    reasons: tuple[str, ...]
    figures: Mapping[str, float | int | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "decision": self.decision.value,
            "reasons": list(self.reasons),
            "figures": dict(self.figures),
        }


def _frac(value: float) -> Fraction:
    # Through str() so 0.995 means exactly 995/1000, not the binary float nearest to it.
    return Fraction(str(value))


def evaluate(
    stage: StageGate,
    window: Comparison,
    *,
    rules: RollbackRules | None = None,
    context: GateContext | None = None,
) -> GateVerdict:
    """Judge one stage on one window (see the module docstring for the rules)."""
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
    figures: dict[str, float | int | None] = {
        **cand.figures(),
        "baseline_p95_s": baseline,
        "latency_ratio": ratio,
        "critical_errors": sum(critical.values()),
        "memory_growth": context.memory_growth,
        "soak_s": context.soak_s,
        "review_band_s": context.review_band_s,
    }

    rollback: list[str] = []
    if critical:
        rollback.append(f"critical errors: {dict(sorted(critical.items()))!r}")
    if context.memory_growth is not None and context.memory_growth > rules.max_memory_growth:
        rollback.append(
            f"memory {context.memory_growth:+.1%} over the stage baseline > {rules.max_memory_growth:.0%}"
        )
    if count >= rules.min_samples:
        if success < _frac(rules.min_success):
            rollback.append(f"success {float(success):.2%} < {rules.min_success:.2%}")
        if errors > _frac(rules.max_error_rate):
            rollback.append(f"errors {float(errors):.2%} > {rules.max_error_rate:.2%}")
    if rollback:
        return GateVerdict(stage.name, Decision.ROLLBACK, tuple(rollback), MappingProxyType(figures))

    hold: list[str] = []
    low, high = rules.review_band
    if count and _frac(low) <= success < _frac(high) and context.review_band_s >= rules.review_after_s:
        hold.append(
            f"manual review: success {float(success):.2%} within [{low:.0%}, {high:.0%}) for "
            f"{context.review_band_s / 60:.0f} min"
        )
    if ratio is not None and ratio > rules.review_latency_ratio:
        hold.append(f"manual review: p95 latency {ratio:.2f}x baseline > {rules.review_latency_ratio}x")
    if count < stage.min_uploads:
        hold.append(f"too few uploads: {count} < {stage.min_uploads}")
    if context.soak_s < stage.min_soak_s:
        hold.append(f"soak {context.soak_s / _HOUR:.1f} h < {stage.min_soak_s / _HOUR:.1f} h")
    if count and success < _frac(stage.min_success):
        hold.append(f"success {float(success):.2%} < {stage.min_success:.2%}")
    if errors > _frac(stage.max_error_rate):
        hold.append(f"errors {float(errors):.2%} > {stage.max_error_rate:.2%}")
    if cand.p95_s is None:
        hold.append("no latency figure: the async arm has no successful calls in the window")
    elif ratio is None:
        hold.append("no latency baseline: the control arm has no successful calls in the window")
    elif ratio > stage.max_latency_ratio:
        hold.append(f"p95 latency {ratio:.2f}x baseline > {stage.max_latency_ratio}x")
    if hold:
        return GateVerdict(stage.name, Decision.HOLD, tuple(hold), MappingProxyType(figures))
    return GateVerdict(
        stage.name,
        Decision.PROMOTE,
        (f"all gates of stage {stage.name} met over {count} uploads",),
        MappingProxyType(figures),
    )
