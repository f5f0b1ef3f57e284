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
the shared flag source (every process on the host follows within one call), then the state records it;
the metric is raised and a structured log line written. Nothing about the state can stop the first two
steps: a state that cannot be read is set aside and a fresh one records the rollback, and what went
wrong comes back in the `RollbackReport` (and the log) after the flag is written. Promotion is never
automatic: `promote` asks the gates and refuses unless they say PROMOTE (or the operator forces it), and
returns the verdict as the evidence.

State lives behind `RolloutStateStore` (load, save, set aside); `StateStore` keeps it in a JSON file
replaced atomically, so the CLI in another process sees and changes the same state; a check re-reads it
first, and keeps judging on the last good state (logging why) when the stored one turns unreadable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from llmfiles._errors import ConfigError, LLMFilesError, SharedStateError
from llmfiles.observe import (
    ArmFigures,
    Comparison,
    MemorySampler,
    RolloutMetrics,
    atomic_write_text,
    move_aside,
)
from llmfiles.rollout._flags import FlagState, OverridableFlagSource, WritableFlagSource
from llmfiles.rollout._gates import (
    DEFAULT_GATES,
    OFF,
    Decision,
    GateContext,
    GateTable,
    GateVerdict,
    StageGate,
    evaluate,
)

_log = structlog.get_logger("llmfiles.rollout")

Status = Literal["off", "running", "rolled_back"]
_HISTORY_KEPT = 50
# datetime's last second (9999-12-31): a time beyond it cannot even be printed.
_LAST_TIME = 253_402_300_799.0


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
    def from_dict(cls, data: Mapping[str, Any], *, origin: str) -> RolloutState:
        """Rebuild a saved state; `ConfigError` naming `origin` (the file) and the bad key when it is not one.

        Every value is checked here, so nothing downstream (the soak clock, the status table) meets a
        time of 1e300 or NaN, or a history entry that is not an object.
        """
        missing = [key for key in ("stage", "status", "stage_started_at") if key not in data]
        if missing:
            raise ConfigError(
                f"{origin} is not a rollout state (missing {missing!r}); restore it or delete it"
            )
        stage, status, started = data["stage"], data["status"], data["stage_started_at"]
        baseline, reason, history = data.get("baseline_p95_s"), data.get("reason"), data.get("history", [])
        if not isinstance(stage, str) or not stage:
            raise ConfigError(f"{origin}: stage={stage!r} must be a stage name")
        if status not in ("off", "running", "rolled_back"):
            raise ConfigError(f"{origin}: status={status!r} must be off, running or rolled_back")
        if not _is_time(started):
            raise ConfigError(
                f"{origin}: stage_started_at={started!r} must be a unix time in [0, {_LAST_TIME:.0f}]"
            )
        if baseline is not None and not (_is_number(baseline) and math.isfinite(baseline) and baseline >= 0):
            raise ConfigError(f"{origin}: baseline_p95_s={baseline!r} must be null or seconds >= 0")
        if reason is not None and not isinstance(reason, str):
            raise ConfigError(f"{origin}: reason={reason!r} must be null or text")
        if not isinstance(history, list):
            raise ConfigError(f"{origin}: history={history!r} must be a list of objects")
        for index, entry in enumerate(history):
            if not isinstance(entry, dict) or not _is_time(entry.get("ts", 0.0)):
                raise ConfigError(
                    f"{origin}: history[{index}]={entry!r} must be an object with a unix time ts"
                )
        return cls(
            stage=stage,
            status=status,
            stage_started_at=float(started),
            baseline_p95_s=None if baseline is None else float(baseline),
            reason=reason,
            history=tuple(history),
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_time(value: object) -> bool:
    return _is_number(value) and 0 <= value <= _LAST_TIME  # type: ignore[operator]


class RolloutStateStore(Protocol):
    """Where the controller keeps its `RolloutState`: a JSON file (`StateStore`), or a shared database.

    Contract:

    - `load` returns the saved state, the initial `RolloutState()` when nothing was saved yet, and
      raises `ConfigError` naming the store and the bad value when what is saved is not a valid state.
    - `save` replaces the saved state as a whole (a reader sees the old one or the new one, never a
      mix) and raises `OSError` or an `LLMFilesError` when it cannot.
    - `set_aside` moves an unreadable saved state out of the way (kept for the post-mortem, never
      deleted) so the next `save` starts afresh; returns where it went, None when nothing was there.
    """

    def load(self) -> RolloutState: ...

    def save(self, state: RolloutState) -> None: ...

    def set_aside(self) -> str | None: ...


class StateStore:
    """`RolloutState` in a JSON file, replaced atomically; a missing file is the initial state.

    Implements `RolloutStateStore`; `set_aside` renames the file to ``<name>.corrupt-<UTC time>``.
    """

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock

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
        atomic_write_text(self.path, json.dumps(state.to_dict(), indent=2, allow_nan=False) + "\n")

    def set_aside(self) -> str | None:
        """Rename an unreadable state file out of the way; None when there is no file."""
        if not self.path.exists():
            return None
        return str(move_aside(self.path, clock=self._clock))


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
class RollbackReport:
    """What a rollback did, for the operator: it always pins this process; the rest is reported here.

    Args:
        state: the state after the rollback (recorded in the store unless `problems` says otherwise).
        from_stage: the stage rolled back from; ``"unknown"`` when no state could ever be read.
        flag_written: the shared flag source now says percentage 0, so every process follows. False
            means only this process is pinned: the source cannot be written (the environment), or the
            write failed (then `problems` says why); other processes keep routing to the async arm.
        problems: what went wrong on the way, in words (a file set aside, a store that refused the
            write); empty when the rollback went through cleanly.
    """

    state: RolloutState
    from_stage: str
    flag_written: bool
    problems: tuple[str, ...] = ()


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
        recorder: where the figures come from: the dispatcher's `Recorder` (this process), or a fleet's
            `llmfiles.fleet.PrometheusFigures` (every instance); any `ArmFigures`.
        flags: the dispatcher's flag source, wrapped so a rollback can pin it in-process; when the
            wrapped source is writable (`FileFlagSource`) rollbacks and promotions are written to it.
        store: persistent state; in memory only when None.
        gates: the stage table and rollback rules.
        interval_s: seconds between checks.
        threshold: consecutive failed checks that roll back.
        clock: wall-clock seconds (inject a fake one in tests).
        memory: RSS sampler for the memory-spike rule; None skips the rule.
        metrics: raised on rollback.
        strict_state: False starts on the initial state (and logs) when the stored one cannot be read,
            instead of raising: for a rollback, which must not be stopped by a broken state.
    """

    def __init__(
        self,
        *,
        recorder: ArmFigures,
        flags: OverridableFlagSource,
        store: RolloutStateStore | None = None,
        gates: GateTable = DEFAULT_GATES,
        interval_s: float = 10.0,
        threshold: int = 3,
        clock: Callable[[], float] = time.time,
        memory: MemorySampler | None = None,
        metrics: RolloutMetrics | None = None,
        strict_state: bool = True,
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
        self._state = RolloutState()
        self._state_read = False
        self._failed = 0
        self._reload(strict=strict_state)
        if strict_state and self._state.stage != OFF:
            gates.stage(self._state.stage)
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
        """Read the shared state again (another process may have promoted or rolled back); an unreadable
        one keeps the last good state, as a check does."""
        self._reload(strict=False)

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
        self._reload(strict=True)
        if self._state.stage == OFF:
            return self._off_verdict()
        whole = self.recorder.compare(window_s=self._stage_window())
        context = self._context(whole.candidate.success_rate if whole.candidate.count else None)
        return self._evaluate(self.gates.stage(self._state.stage), whole, self._stage_window(), context)

    def check(self) -> CheckResult:
        """Judge the last interval and the whole stage, count a failure, roll back at `threshold` of them.

        A stored state that turned unreadable does not stop the check: it judges on the last good state
        (and logs), so a brownout is still rolled back.
        """
        self._reload(strict=False)
        if self._state.stage == OFF:
            self._failed = 0
            self.last_check = CheckResult(self._off_verdict(), 0, False)
            return self.last_check
        stage = self.gates.stage(self._state.stage)
        rules = self.gates.rules
        recent = self.recorder.compare(window_s=min(self.interval_s, self._stage_window()))
        whole = self.recorder.compare(window_s=self._stage_window())
        context = self._context(whole.candidate.success_rate if whole.candidate.count else None)
        recent_verdict = self._evaluate(stage, recent, min(self.interval_s, self._stage_window()), context)
        whole_verdict = self._evaluate(stage, whole, self._stage_window(), context)
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
    ) -> RollbackReport:
        """Send every key to the legacy arm at once: pin here, write the flag source, persist, count, log.

        Never stopped by the state: the flag goes first, a state that cannot be read is set aside and a
        fresh one records the rollback, and whatever went wrong is in the report's `problems` (and
        logged as ``rollout_rollback_incomplete``) rather than raised.
        """
        self.flags.pin(0.0)
        problems: list[str] = []
        flag_written = self._write_flag_off(
            problems,
            reason=f"{trigger} rollback: {reason}",
            evidence=None if verdict is None else verdict.to_dict(),
        )
        unreadable = self._reload(strict=False)
        if isinstance(unreadable, SharedStateError):
            problems.append(f"the state store cannot be reached: {unreadable}")
        elif unreadable is not None:
            problems.append(f"the state could not be read: {unreadable}")
            problems.append(self._set_aside_state())
        now = self._clock()
        # Never read a state: where the rollout stood is unknown, not "off".
        previous = self._state.stage if self._state_read or self.store is None else "unknown"
        try:
            self._set_state(
                replace(self._state, stage=OFF, status="rolled_back", stage_started_at=now, reason=reason),
                action="rollback",
                from_stage=previous,
                trigger=trigger,
                now=now,
            )
        except (OSError, LLMFilesError) as exc:
            problems.append(f"the state could not record the rollback: {exc}")
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
        if problems:
            _log.error("rollout_rollback_incomplete", flag_written=flag_written, problems=problems)
        return RollbackReport(self._state, previous, flag_written, tuple(problems))

    def _write_flag_off(
        self, problems: list[str], *, reason: str, evidence: Mapping[str, Any] | None
    ) -> bool:
        inner = self.flags.inner
        if not isinstance(inner, WritableFlagSource):
            return False  # the environment, a static source: the pin is the whole rollback (see the report)
        try:
            moved = inner.roll_back(reason=reason, evidence=evidence)
        except (OSError, LLMFilesError) as exc:
            problems.append(
                f"the flag could not be written, other processes still route to the async arm: {exc}"
            )
            return False
        if moved is not None:
            problems.append(
                f"the flag source could not be read: set aside as {moved}, replaced by the flags off"
            )
        return True

    def _set_aside_state(self) -> str:
        if self.store is None:
            return "no state store"
        try:
            moved = self.store.set_aside()
        except (OSError, LLMFilesError) as exc:
            return f"the unreadable state could not be set aside: {exc}"
        if moved is None:
            return "nothing to set aside; a fresh state records this rollback"
        return f"the unreadable state was set aside as {moved}; a fresh state records this rollback"

    def promote(self, *, force: bool = False) -> PromotionResult:
        """Move to the next stage if the gates say PROMOTE (or `force`); the verdict is the evidence.

        From ``"off"`` the first stage starts without a verdict, unless the rollout was rolled back:
        restarting after a rollback needs `force`, so someone has looked at why.

        Raises:
            ConfigError: the stored state cannot be read (a promotion needs to know where it stands).
        """
        self._reload(strict=True)
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

    def _evaluate(
        self, stage: StageGate, window: Comparison, window_s: float, context: GateContext
    ) -> GateVerdict:
        # The judge compares the arms' latency samples, which a Comparison summarises away.
        return evaluate(
            stage,
            window,
            latencies=self.recorder.latency_samples(window_s=window_s),
            rules=self.gates.rules,
            context=context,
            gate_set=self.gates.name,
        )

    def _stage_window(self) -> float:
        # Only calls made during this stage count: a rollback's bad minutes must not haunt the next start.
        since_start = self._clock() - self._state.stage_started_at
        return min(self.recorder.window_s, max(since_start, 1e-6))

    def _off_verdict(self) -> GateVerdict:
        return GateVerdict(OFF, Decision.HOLD, (f"rollout is {self._state.status}",), {})

    def _reload(self, *, strict: bool) -> LLMFilesError | None:
        """Re-read the stored state; when it cannot be read, raise (`strict`) or keep the last good one.

        Returns why the stored state could not be read (a `ConfigError`: it is corrupt; a
        `SharedStateError`: a fleet's database is out of reach), None when it could.
        """
        if self.store is None:
            return None
        try:
            stored = self.store.load()
        except (ConfigError, SharedStateError) as exc:
            if strict:
                raise
            _log.error("rollout_state_unreadable_kept_last", error=str(exc))
            return exc
        self._state_read = True
        if stored != self._state:
            self._state = stored
            self._failed = 0
        return None

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
