"""The chaos engine: turns the rules and a seed into one decision per provider request.

Determinism: each rule owns a `random.Random` seeded from ``(seed, rule index)`` and a counter of the
requests it matched. A matching request always advances both (one draw for the trigger, then draws for a
latency sample only when it fires), whatever other rules do, so the same seed and the same request order
give the same faults.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from mock_provider._rules import Effect, Latency, Rule, Slow


@dataclass(frozen=True, slots=True)
class Decision:
    """What chaos does to one request.

    Latencies of all firing rules add up; the slowest `Slow` cap wins; the first firing rule with any
    other effect is the `terminal` one (it decides how the exchange ends).
    """

    latency_s: float = 0.0
    bytes_per_second: int | None = None
    terminal: Effect | None = None

    @property
    def fault(self) -> str | None:
        """The journal's ``fault``: the most decisive effect applied, or None."""
        if self.terminal is not None:
            return self.terminal.kind
        if self.bytes_per_second is not None:
            return "slow"
        if self.latency_s > 0:
            return "latency"
        return None


@dataclass(slots=True)
class _RuleState:
    rule: Rule
    rng: random.Random
    matched: int = 0


@dataclass(slots=True)
class ChaosEngine:
    """Rules plus their per-rule random streams and counters."""

    rules: tuple[Rule, ...]
    seed: int
    _states: list[_RuleState] = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Back to the first request of the sequence: fresh random streams and counters."""
        # A string seed is hashed with SHA-512 by `random`, so it is stable across processes.
        self._states = [
            _RuleState(rule, random.Random(f"{self.seed}:{index}")) for index, rule in enumerate(self.rules)
        ]

    def decide(
        self, provider: str, operation: str, method: str, headers: Mapping[str, str] | None = None
    ) -> Decision:
        """The chaos for one request; `headers` (names lower-cased) feed rules that match on them."""
        latency = 0.0
        bps: int | None = None
        terminal: Effect | None = None
        for state in self._states:
            if not state.rule.match.matches(provider, operation, method, headers):
                continue
            state.matched += 1
            if not state.rule.trigger.fires(state.matched, state.rng.random()):
                continue
            effect = state.rule.effect
            if isinstance(effect, Latency):
                latency += sample_latency(effect, state.rng)
            elif isinstance(effect, Slow):
                bps = effect.bytes_per_second if bps is None else min(bps, effect.bytes_per_second)
            elif terminal is None:
                terminal = effect
        return Decision(latency, bps, terminal)


def sample_latency(latency: Latency, rng: random.Random) -> float:
    """One delay in seconds drawn from `latency`'s distribution, never above its cap."""
    if latency.distribution == "fixed":
        value = latency.seconds
    elif latency.distribution == "uniform":
        value = rng.uniform(latency.low, latency.high)
    else:
        # The median of a lognormal is exp(mu).
        value = rng.lognormvariate(math.log(latency.median), latency.sigma)
    return min(value, latency.cap)
