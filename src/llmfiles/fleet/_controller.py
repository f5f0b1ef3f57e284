"""`FleetController`: a `RolloutController` that acts only while it holds the fleet's lease.

Run one on several hosts; each `tick` renews or tries to take the lease, and the holder judges every
interval that has ended (and been scraped) since the last recorded one, each at its own end time, so an
interval that fell into a takeover gap is judged late rather than lost. The failure streak comes from
the lease row and goes back to it with each recorded check (see `ControllerLease`).

Acting on stale facts is bounded by the fence: a holder that lost its lease records nothing. The one
action a deposed holder may still take in that gap is a rollback, which is safe to apply twice; promotion
is never automatic. When the figures (Prometheus) or the lease (PostgreSQL) cannot be read, the tick
holds, records nothing, and says why.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog

from llmfiles._errors import ConfigError, SharedStateError
from llmfiles.fleet._lease import ControllerLease
from llmfiles.rollout import CheckResult, RolloutController

_log = structlog.get_logger("llmfiles.fleet")


class PinnedClock:
    """Wall-clock seconds, or a pinned instant while a past interval is judged at its own end."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._pinned: float | None = None

    def __call__(self) -> float:
        return self._clock() if self._pinned is None else self._pinned

    @contextlib.contextmanager
    def at(self, instant: float) -> Iterator[None]:
        """Within the block, the clock reads `instant`."""
        self._pinned = instant
        try:
            yield
        finally:
            self._pinned = None


@dataclass(frozen=True, slots=True)
class FleetTick:
    """What one tick did: whether this controller holds the lease, the checks it made, and why not more."""

    acting: bool
    checks: tuple[tuple[int, CheckResult], ...] = ()
    held_because: str | None = None


class FleetController:
    """Drives `controller` on the lease's schedule.

    Args:
        controller: built with a fleet state store, a fleet flag source and fleet figures, and with
            `clock` as its clock and its figures' clock.
        lease: this controller's lease.
        clock: the `PinnedClock` shared with `controller` and its figures.
        settle_s: how long after an interval's end its figures are complete (Prometheus' scrape
            interval): an interval is judged only after that.
        max_catch_up: intervals judged late after a takeover at most; older ones are skipped (logged).
    """

    def __init__(
        self,
        controller: RolloutController,
        lease: ControllerLease,
        *,
        clock: PinnedClock,
        settle_s: float = 1.0,
        max_catch_up: int = 3,
    ) -> None:
        if not (math.isfinite(settle_s) and settle_s >= 0):
            raise ConfigError(f"settle_s={settle_s!r} must be a finite number of seconds >= 0")
        if max_catch_up < 1:
            raise ConfigError(f"max_catch_up={max_catch_up!r} must be >= 1")
        self.controller = controller
        self.lease = lease
        self.settle_s = settle_s
        self.max_catch_up = max_catch_up
        self._clock = clock

    def tick(self) -> FleetTick:
        """Renew the lease and judge every settled interval not judged yet (see the module docstring)."""
        try:
            grant = self.lease.acquire()
        except SharedStateError as exc:
            return FleetTick(False, held_because=f"lease unavailable: {exc}")
        if grant is None:
            return FleetTick(False, held_because="another controller holds the lease")
        interval = self.controller.interval_s
        newest = math.floor((grant.now - self.settle_s) / interval) - 1
        first = newest if grant.last_slot < 0 else grant.last_slot + 1
        if newest - first + 1 > self.max_catch_up:
            _log.warning("fleet_checks_skipped", first=first, upto=newest - self.max_catch_up)
            first = newest - self.max_catch_up + 1
        done: list[tuple[int, CheckResult]] = []
        stage_key = grant.stage_key
        failed = grant.failed_checks
        for slot in range(first, newest + 1):
            try:
                with self._clock.at((slot + 1) * interval):
                    # A streak belongs to one stage: a promotion or rollback since it was recorded ends it.
                    self.controller.reload()
                    if self.controller.stage_key != stage_key:
                        stage_key, failed = self.controller.stage_key, 0
                    self.controller.failed_checks = failed
                    result = self.controller.check()
            except SharedStateError as exc:
                _log.warning("fleet_check_held", slot=slot, reason=str(exc))
                return FleetTick(True, tuple(done), held_because=f"figures unavailable: {exc}")
            recorded = self.lease.record(
                grant,
                slot=slot,
                decision=result.verdict.decision.value,
                failed_checks=result.failed_checks,
                rolled_back=result.rolled_back,
                stage_key=self.controller.stage_key,
            )
            if not recorded:
                return FleetTick(False, tuple(done), held_because="lease lost during the check")
            done.append((slot, result))
            stage_key, failed = self.controller.stage_key, result.failed_checks
        return FleetTick(True, tuple(done))

    def next_tick_in(self, now: float) -> float:
        """Seconds until the next tick: when the next interval becomes judgeable (its end plus
        `settle_s`), or sooner to renew the lease (a third of its time-to-live), whichever comes first.

        Waking exactly when an interval can be judged keeps the decision bound at
        interval x (threshold + 1) + settle, with no polling period added on top.
        """
        interval = self.controller.interval_s
        due = (math.floor((now - self.settle_s) / interval) + 1) * interval + self.settle_s
        return max(0.0, min(due - now, self.lease.ttl_s / 3))

    def run(self, stop: threading.Event) -> None:
        """Tick (see `next_tick_in`) until `stop` is set; then release the lease for another to take."""
        last: tuple[bool, str | None] | None = None
        try:
            while not stop.is_set():
                tick = self.tick()
                if (tick.acting, tick.held_because) != last:
                    last = (tick.acting, tick.held_because)
                    _log.info(
                        "fleet_controller_acting" if tick.acting else "fleet_controller_standing_by",
                        holder=self.lease.holder,
                        reason=tick.held_because,
                    )
                stop.wait(self.next_tick_in(time.time()))
        finally:
            with contextlib.suppress(SharedStateError):
                self.lease.release()
