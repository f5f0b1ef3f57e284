"""`FleetController` on a real PostgreSQL server: one controller acts, a takeover continues the streak."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from llmfiles.fleet import (
    ControllerLease,
    FleetController,
    PinnedClock,
    PostgresFlagSource,
    PostgresStateStore,
)
from llmfiles.observe import Recorder
from llmfiles.rollout import DEFAULT_GATES, FlagState, OverridableFlagSource, RolloutController
from tests.llmfiles._events import make_event

pytestmark = pytest.mark.integration

INTERVAL = 1.0
LEASE_S = 3.0


def _controller(
    dsn: str, holder: str, recorder: Recorder, clock: PinnedClock, opened: ExitStack
) -> FleetController:
    source = PostgresFlagSource(dsn, poll_s=0.2)
    store = PostgresStateStore(dsn)
    opened.callback(source.close)
    opened.callback(store.close)
    rollout = RolloutController(
        recorder=recorder,
        flags=OverridableFlagSource(source),
        store=store,
        gates=DEFAULT_GATES.with_soak(0),
        interval_s=INTERVAL,
        threshold=3,
        clock=clock,
    )
    # A lease of three intervals: a busy test machine's slow tick must not cost the holder its lease.
    lease = ControllerLease(dsn, holder=holder, ttl_s=LEASE_S)
    opened.callback(lease.close)
    return FleetController(rollout, lease, clock=clock, settle_s=0.0, max_catch_up=10)


def _failing_stream(recorder: Recorder, clock: PinnedClock, seconds: float) -> None:
    """An async arm that fails every call, 40 calls a second, over the last `seconds` (and the next 30 s)."""
    start = clock() - seconds
    for i in range(int((seconds + 30) * 40)):
        ts = start + i / 40
        recorder.record(
            make_event(ts=ts, arm="async", outcome="failure", error_type="ServerError", stage="10%")
        )
        recorder.record(make_event(ts=ts, arm="legacy", outcome="success", stage="10%"))


def _tick_until(controller: FleetController, checks: int, timeout_s: float = 10.0) -> list[int]:
    slots: list[int] = []
    deadline = time.monotonic() + timeout_s
    while len(slots) < checks and time.monotonic() < deadline:
        tick = controller.tick()
        assert tick.acting, tick.held_because
        slots += [slot for slot, _ in tick.checks]
        time.sleep(0.05)
    return slots


def test_one_controller_acts_and_a_takeover_neither_loses_nor_doubles_a_check(dsn: str) -> None:
    clock = PinnedClock()
    recorder = Recorder(window_s=600.0, clock=clock)
    with ExitStack() as opened:
        _takeover(dsn, recorder, clock, opened)


def _takeover(dsn: str, recorder: Recorder, clock: PinnedClock, opened: ExitStack) -> None:
    a = _controller(dsn, "a", recorder, clock, opened)
    b = _controller(dsn, "b", recorder, clock, opened)
    a.controller.promote()  # off -> 1%
    a.controller.flags.inner.write(FlagState(enabled=True, percent=1.0))  # type: ignore[attr-defined]
    _failing_stream(recorder, clock, seconds=0.0)

    first = _tick_until(a, 2)
    assert b.tick().acting is False  # a holds the lease: b stands by
    assert a.controller.failed_checks == 2
    assert a.controller.state.status == "running"

    time.sleep(LEASE_S + 0.5)  # a dies without releasing: its lease expires
    later = _tick_until(b, 1)
    assert b.controller.state.status == "rolled_back"  # b continued a's streak of 2 to the threshold of 3
    assert b.controller.flags.inner.snapshot().effective_percent == 0.0  # type: ignore[attr-defined]

    recorded = a.lease.checks()
    slots = [check.slot for check in recorded]
    assert slots == sorted(set(slots))  # never the same slot twice
    assert slots == list(range(slots[0], slots[-1] + 1))  # and no slot skipped across the takeover
    assert [check.holder for check in recorded] == ["a"] * len(first) + ["b"] * (len(recorded) - len(first))
    assert later
    takeover = recorded[len(first)]
    # b's first check continued a's streak of 2: the third failure in a row rolled back at once (and a
    # rollback ends the streak, so it is recorded as 0).
    assert (takeover.holder, takeover.rolled_back, takeover.failed_checks) == ("b", True, 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [(10.0, 1.0), (10.5, 0.5), (11.0, 2.0), (12.9, 0.1)],
    ids=["before-due", "closer", "just-judged", "almost-due"],
)
def test_a_controller_wakes_when_the_next_interval_can_be_judged(
    dsn: str, now: float, expected: float
) -> None:
    clock = PinnedClock()
    with ExitStack() as opened:
        # interval 1 s in `_controller`: scale the expectations from a 2 s interval with settle 1 s.
        fleet = _controller(dsn, "a", Recorder(clock=clock), clock, opened)
        fleet.controller.interval_s = 2.0
        fleet.settle_s = 1.0
        fleet.lease.ttl_s = 6.0
        assert fleet.next_tick_in(now) == pytest.approx(expected)
        fleet.lease.ttl_s = 0.9  # a short lease is renewed sooner than the next interval is due
        assert fleet.next_tick_in(now) == pytest.approx(min(expected, 0.3))
