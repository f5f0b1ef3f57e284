"""`ControllerLease` against a real PostgreSQL server: one holder, takeover on expiry, the epoch fence."""

from __future__ import annotations

import time

import pytest

from llmfiles import ConfigError
from llmfiles.fleet import ControllerLease

pytestmark = pytest.mark.integration


def test_only_one_of_two_controllers_holds_the_lease(dsn: str) -> None:
    a, b = ControllerLease(dsn, holder="a", ttl_s=5.0), ControllerLease(dsn, holder="b", ttl_s=5.0)
    try:
        first = a.acquire()
        assert first is not None
        assert b.acquire() is None
        renewed = a.acquire()
        assert renewed is not None
        assert renewed.epoch == first.epoch  # a renewal is not a takeover
    finally:
        a.close()
        b.close()


def test_another_controller_takes_over_once_the_lease_expires_and_carries_the_streak(dsn: str) -> None:
    a, b = ControllerLease(dsn, holder="a", ttl_s=0.3), ControllerLease(dsn, holder="b", ttl_s=0.3)
    try:
        grant = a.acquire()
        assert grant is not None
        assert a.record(grant, slot=10, decision="ROLLBACK", failed_checks=2, rolled_back=False)
        time.sleep(0.5)  # a stops renewing (it died)
        taken = b.acquire()
        assert taken is not None
        assert taken.epoch == grant.epoch + 1
        assert (taken.last_slot, taken.failed_checks) == (10, 2)  # the streak survives the takeover
    finally:
        a.close()
        b.close()


def test_a_deposed_holder_records_nothing_and_no_slot_is_checked_twice(dsn: str) -> None:
    a, b = ControllerLease(dsn, holder="a", ttl_s=0.3), ControllerLease(dsn, holder="b", ttl_s=5.0)
    try:
        stale = a.acquire()
        assert stale is not None
        time.sleep(0.5)
        fresh = b.acquire()
        assert fresh is not None
        # a wakes up from a pause and tries to record with its old epoch: fenced off.
        assert not a.record(stale, slot=1, decision="ROLLBACK", failed_checks=1, rolled_back=False)
        assert b.record(fresh, slot=1, decision="HOLD", failed_checks=0, rolled_back=False)
        assert not b.record(fresh, slot=1, decision="HOLD", failed_checks=0, rolled_back=False)
        assert [(check.slot, check.holder) for check in b.checks()] == [(1, "b")]
    finally:
        a.close()
        b.close()


def test_release_lets_another_take_over_at_once(dsn: str) -> None:
    a, b = ControllerLease(dsn, holder="a", ttl_s=60.0), ControllerLease(dsn, holder="b", ttl_s=60.0)
    try:
        assert a.acquire() is not None
        a.release()
        assert b.acquire() is not None
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("holder", "ttl_s", "message"),
    [("a", 0.0, "ttl_s=0.0"), ("a", float("inf"), "ttl_s=inf"), ("", 1.0, "holder=''")],
    ids=["zero-ttl", "infinite-ttl", "no-holder"],
)
def test_invalid_leases_are_refused(dsn: str, holder: str, ttl_s: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ControllerLease(dsn, holder=holder, ttl_s=ttl_s)
