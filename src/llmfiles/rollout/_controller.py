"""The rollout controller: checks the gates every interval, rolls back by itself, promotes when asked.

Detection: a check fails when the gates say ROLLBACK over the last interval's calls (or over the whole
stage). `threshold` consecutive failed checks roll back. A brownout starting at t is rolled back by
t + interval x (threshold + 1): the first check after t may still see mostly healthy calls, the second
sees an interval wholly inside the brownout, and from there `threshold` checks must agree (by
t + interval x threshold when the first check already fails), provided each interval brings the rules'
``min_samples`` calls to the async arm. Defaults: 10 s x 3, so within 40 s; the documents promised 5
minutes. A check with too few calls to judge neither counts nor clears a failure streak: a brownout
that slows calls until they time out must not reset it by leaving an interval empty.

Rollback is applied at once and in this order: the percentage is pinned to 0 in this process, written to
the shared flag source (every process on the host follows within one call), then the state file records
it; the metric is raised and a structured log line written. Promotion is never automatic: `promote` asks
the gates and refuses unless they say PROMOTE (or the operator forces it), and returns the verdict as the
evidence.

State lives in a JSON file (`StateStore`) replaced atomically, so the CLI in another process sees
and changes the same state; a check re-reads it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import structlog

from llmfiles._errors import ConfigError
from llmfiles.observe import MemorySampler, Recorder, RolloutMetrics, atomic_write_text
from llmfiles.rollout._flags import FlagState, OverridableFlagSource, WritableFlagSource
from llmfiles.rollout._gates import (
    DEFAULT_GATES,
    OFF,
    Decision,
    GateContext,
    GateTable,
    GateVerdict,
    evaluate,
)

_log = structlog.get_logger("llmfiles.rollout")

Status = Literal["off", "running", "rolled_back"]
_HISTORY_KEPT = 50


@dataclass(frozen=True, slots=True)
class RolloutState:
    """The controller's persistent state.

    Args:
        stage: the stage in force, ``"off"`` before the first promotion and after a rollback.
        status: ``"off"``, ``"running"`` or ``"rolled_back"`` (off because of a rollback: restarting
            needs `force`).
        stage_started_at: when the stage began (unix seconds): the soak clock.
        baseline_p95_s: the control arm's p95 when the stage began: the latency baseline once the
            control arm has too little traffic to measure (the 100 % stage).
        reason: why the last change happened.
        history: the last changes, newest last: ``{"ts", "action", "from", "to", "trigger", "reason"}``.
    """

    stage: str = OFF
    status: Status = "off"
    stage_started_at: float = 0.0
    baseline_p95_s: float | None = None
    reason: str | None = None
    history: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `StateStore` writes; `from_dict` reads it back."""
        return {
            "stage": self.stage,
            "status": self.status,
            "stage_started_at": self.stage_started_at,
            "baseline_p95_s": self.baseline_p95_s,
            "reason": self.reason,
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str) -> RolloutState:
        """Rebuild a saved state; `ConfigError` naming `origin` (the file) when it is not one."""
        try:
            state = cls(
                stage=str(data["stage"]),
                status=data["status"],
                stage_started_at=float(data["stage_started_at"]),
                baseline_p95_s=None if data.get("baseline_p95_s") is None else float(data["baseline_p95_s"]),
                reason=data.get("reason"),
                history=tuple(data.get("history", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{origin} is not a rollout state ({exc!r}); restore it or delete it") from exc
        if state.status not in ("off", "running", "rolled_back"):
            raise ConfigError(f"{origin}: status={state.status!r} must be off, running or rolled_back")
        return state


class StateStore:
    """`RolloutState` in a JSON file, replaced atomically; a missing file is the initial state."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> RolloutState:
        """The saved state, or the initial one when nothing was saved yet (a first start)."""
        origin = f"state_file={str(self.path)!r}"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return RolloutState()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{origin} cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{origin} must hold a JSON object")
        return RolloutState.from_dict(data, origin=origin)

    def save(self, state: RolloutState) -> None:
        """Replace the file atomically, so a crash mid-write never leaves a state the next start rejects."""
        atomic_write_text(self.path, json.dumps(state.to_dict(), indent=2) + "\n")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: the verdict, the failure streak after it, whether it rolled back, and its evidence.

    `samples` is the candidate arm's calls in the last interval: below the rules' ``min_samples`` the
    check could not judge the interval on its own.
    """

    verdict: GateVerdict
    failed_checks: int
    rolled_back: bool
    samples: int = 0


@dataclass(frozen=True, slots=True)
class PromotionResult:
    """What `promote` did (`applied`) and why, with the verdict it judged by (None when starting)."""

    applied: bool
    from_stage: str
    to_stage: str | None
    verdict: GateVerdict | None
    reason: str


class RolloutController:
    """Runs the gates every `interval_s` and applies automatic rollback; promotes on request.

    Args:
        recorder: the dispatcher's recorder (the figures).
        flags: the dispatcher's flag source, wrapped so a rollback can pin it in-process; when the
            wrapped source is writable (`FileFlagSource`) rollbacks and promotions are written to it.
        store: persistent state; in memory only when None.
        gates: the stage table and rollback rules.
        interval_s: seconds between checks.
        threshold: consecutive failed checks that roll back.
        clock: wall-clock seconds (inject a fake one in tests).
        memory: RSS sampler for the memory-spike rule; None skips the rule.
        metrics: raised on rollback.
    """

    def __init__(
        self,
        *,
        recorder: Recorder,
        flags: OverridableFlagSource,
        store: StateStore | None = None,
        gates: GateTable = DEFAULT_GATES,
        interval_s: float = 10.0,
        threshold: int = 3,
        clock: Callable[[], float] = time.time,
        memory: MemorySampler | None = None,
        metrics: RolloutMetrics | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ConfigError(f"interval_s={interval_s!r} must be > 0 seconds")
        if threshold < 1:
            raise ConfigError(f"threshold={threshold!r} must be >= 1")
        self.recorder = recorder
        self.flags = flags
        self.store = store
        self.gates = gates
        self.interval_s = interval_s
        self.threshold = threshold
        self._clock = clock
        self._memory = memory
        self._metrics = metrics
        self._state = store.load() if store is not None else RolloutState()
        if self._state.stage != OFF:
            gates.stage(self._state.stage)
        self._failed = 0
        self._review_since: float | None = None
        self.last_check: CheckResult | None = None

    @property
    def detection_bound_s(self) -> float:
        """Longest time from the onset of a brownout to the automatic rollback (module docstring)."""
        return self.interval_s * (self.threshold + 1)

    @property
    def stage_key(self) -> str:
        """Names the stage run in force (stage and start): a failure streak belongs to one stage run."""
        return f"{self._state.stage}@{self._state.stage_started_at!r}"

    def reload(self) -> None:
        """Read the shared state again (another process may have promoted or rolled back)."""
        self._reload()

    @property
    def failed_checks(self) -> int:
        """The current streak of failed checks; a fleet controller carries it over from the lease."""
        return self._failed

    @failed_checks.setter
    def failed_checks(self, value: int) -> None:
        if value < 0:
            raise ConfigError(f"failed_checks={value!r} must be >= 0")
        self._failed = value

    @property
    def state(self) -> RolloutState:
        return self._state

    def current_stage(self) -> str:
        """The stage in force; pass it to the dispatcher as ``stage=controller.current_stage``."""
        return self._state.stage

    def verdict(self) -> GateVerdict:
        """The gates' verdict over the whole stage so far, without acting on it."""
        self._reload()
        if self._state.stage == OFF:
            return self._off_verdict()
        whole = self.recorder.compare(window_s=self._stage_window())
        context = self._context(whole.candidate.success_rate if whole.candidate.count else None)
        return evaluate(self.gates.stage(self._state.stage), whole, rules=self.gates.rules, context=context)

    def check(self) -> CheckResult:
        """Judge the last interval and the whole stage, count a failure, roll back at `threshold` of them."""
        self._reload()
        if self._state.stage == OFF:
            self._failed = 0
            self.last_check = CheckResult(self._off_verdict(), 0, False)
            return self.last_check
        stage = self.gates.stage(self._state.stage)
        rules = self.gates.rules
        recent = self.recorder.compare(window_s=min(self.interval_s, self._stage_window()))
        whole = self.recorder.compare(window_s=self._stage_window())
        context = self._context(whole.candidate.success_rate if whole.candidate.count else None)
        recent_verdict = evaluate(stage, recent, rules=rules, context=context)
        whole_verdict = evaluate(stage, whole, rules=rules, context=context)
        verdict = recent_verdict if recent_verdict.decision is Decision.ROLLBACK else whole_verdict
        if verdict.decision is Decision.ROLLBACK:
            self._failed += 1
        elif recent.candidate.count >= rules.min_samples:
            self._failed = 0
        rolled_back = self._failed >= self.threshold
        if rolled_back:
            self.rollback("; ".join(verdict.reasons), trigger="automatic", verdict=verdict)
        self.last_check = CheckResult(verdict, self._failed, rolled_back, recent.candidate.count)
        return self.last_check

    def rollback(
        self, reason: str, *, trigger: str = "manual", verdict: GateVerdict | None = None
    ) -> RolloutState:
        """Send every key to the legacy arm at once: pin here, write the flag source, persist, count, log."""
        self._reload()
        now = self._clock()
        self.flags.pin(0.0)
        inner = self.flags.inner
        if isinstance(inner, WritableFlagSource):
            inner.write(replace(inner.snapshot(), percent=0.0))
        previous = self._state.stage
        self._set_state(
            replace(
                self._state,
                stage=OFF,
                status="rolled_back",
                stage_started_at=now,
                reason=reason,
            ),
            action="rollback",
            from_stage=previous,
            trigger=trigger,
            now=now,
        )
        self._failed = 0
        if self._metrics is not None:
            self._metrics.rollback(trigger=trigger)
        _log.warning(
            "rollout_rolled_back",
            from_stage=previous,
            trigger=trigger,
            reason=reason,
            figures=None if verdict is None else dict(verdict.figures),
        )
        return self._state

    def promote(self, *, force: bool = False) -> PromotionResult:
        """Move to the next stage if the gates say PROMOTE (or `force`); the verdict is the evidence.

        From ``"off"`` the first stage starts without a verdict, unless the rollout was rolled back:
        restarting after a rollback needs `force`, so someone has looked at why.
        """
        self._reload()
        current = self._state.stage
        target = self.gates.next_stage(current)
        verdict = None if current == OFF else self.verdict()
        if target is None:
            return PromotionResult(False, current, None, verdict, f"stage {current} is the last one")
        if current == OFF and self._state.status == "rolled_back" and not force:
            reason = f"rolled back ({self._state.reason}); restart with force once the cause is fixed"
            return PromotionResult(False, current, target.name, None, reason)
        if verdict is not None and verdict.decision is not Decision.PROMOTE and not force:
            reason = f"gates say {verdict.decision.value}: " + "; ".join(verdict.reasons)
            return PromotionResult(False, current, target.name, verdict, reason)
        now = self._clock()
        control_p95 = verdict.figures.get("baseline_p95_s") if verdict is not None else None
        inner = self.flags.inner
        if isinstance(inner, WritableFlagSource):
            inner.write(FlagState(enabled=True, percent=target.percent, fallback=inner.snapshot().fallback))
        self.flags.unpin()
        if self._memory is not None:
            self._memory.reset_baseline()
        if self._metrics is not None:
            self._metrics.percent.set(target.percent)
        if verdict is None:
            reason = "rollout started"
        elif verdict.decision is Decision.PROMOTE:
            reason = "gates say PROMOTE"
        else:
            reason = f"forced by the operator over {verdict.decision.value}"
        self._set_state(
            replace(
                self._state,
                stage=target.name,
                status="running",
                stage_started_at=now,
                baseline_p95_s=float(control_p95) if control_p95 else self._state.baseline_p95_s,
                reason=reason,
            ),
            action="promote",
            from_stage=current,
            trigger="forced" if force else "operator",
            now=now,
        )
        self._failed = 0
        _log.info("rollout_promoted", from_stage=current, to_stage=target.name, reason=reason)
        return PromotionResult(True, current, target.name, verdict, reason)

    async def run(self, stop: asyncio.Event) -> None:
        """Check every `interval_s` until `stop` is set; a failing check is logged, never fatal.

        Checks are due at fixed times (start + k x interval), so a slow check does not stretch the
        detection bound by drifting every later one; a time missed (the loop was busy) is skipped, not
        made up in a burst of checks that would all judge the same calls.
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stop.is_set():
            due += self.interval_s
            while due < loop.time():
                due += self.interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, due - loop.time()))
                return
            try:
                self.check()
            except Exception as exc:
                _log.error("rollout_check_failed", error_type=type(exc).__name__, error=str(exc))

    def _context(self, success_rate: float | None) -> GateContext:
        now = self._clock()
        low, high = self.gates.rules.review_band
        if success_rate is not None and low <= success_rate < high:
            self._review_since = self._review_since if self._review_since is not None else now
        else:
            self._review_since = None
        growth = self._memory.growth() if self._memory is not None else None
        if growth is not None and self._metrics is not None:
            self._metrics.memory_growth.set(growth)
        return GateContext(
            soak_s=max(0.0, now - self._state.stage_started_at),
            memory_growth=growth,
            review_band_s=0.0 if self._review_since is None else now - self._review_since,
            baseline_p95_s=self._state.baseline_p95_s,
        )

    def _stage_window(self) -> float:
        # Only calls made during this stage count: a rollback's bad minutes must not haunt the next start.
        since_start = self._clock() - self._state.stage_started_at
        return min(self.recorder.window_s, max(since_start, 1e-6))

    def _off_verdict(self) -> GateVerdict:
        return GateVerdict(OFF, Decision.HOLD, (f"rollout is {self._state.status}",), {})

    def _reload(self) -> None:
        if self.store is None:
            return
        stored = self.store.load()
        if stored != self._state:
            self._state = stored
            self._failed = 0

    def _set_state(
        self, state: RolloutState, *, action: str, from_stage: str, trigger: str, now: float
    ) -> None:
        entry = {
            "ts": now,
            "action": action,
            "from": from_stage,
            "to": state.stage,
            "trigger": trigger,
            "reason": state.reason,
        }
        self._state = replace(state, history=(*state.history, entry)[-_HISTORY_KEPT:])
        if self.store is not None:
            self.store.save(self._state)
