"""`PostgresFlagSource` against a real PostgreSQL server: notification, polling, history, outage."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness._engines import ThrowawayPostgres
from llmfiles import ConfigError, SharedStateError
from llmfiles.fleet import PostgresFlagSource
from llmfiles.rollout import FileFlagSource, FlagState

pytestmark = pytest.mark.integration


def _within(seconds: float, condition: Callable[[], bool]) -> float | None:
    """Seconds until `condition` held, or None if it did not within `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        time.sleep(0.01)
    return None


def test_a_write_reaches_another_instance_by_notification_well_within_a_second(dsn: str) -> None:
    # Polling every minute: only the notification can deliver the change this fast.
    with (
        PostgresFlagSource(dsn, poll_s=60.0) as writer,
        PostgresFlagSource(dsn, poll_s=60.0) as reader,
    ):
        assert reader.snapshot() == FlagState()
        writer.write(FlagState(enabled=True, percent=10.0), actor="test", reason="start")
        seen = _within(1.0, lambda: reader.snapshot().percent == 10.0)
        assert seen is not None


def test_a_change_without_notification_is_picked_up_by_polling(
    dsn: str, postgres_server: ThrowawayPostgres
) -> None:
    with PostgresFlagSource(dsn, poll_s=0.2) as reader:
        reader.write(FlagState(enabled=True, percent=50.0))
        # An operator's UPDATE by hand sends no NOTIFY: the poll must find it.
        name = dsn.rsplit("/", 1)[1]
        postgres_server.psql(f"\\c {name}\nUPDATE llmfiles_flags SET percent = 0, version = version + 1")
        assert _within(1.0, lambda: reader.snapshot().percent == 0.0) is not None


def test_every_write_leaves_its_history_with_evidence(dsn: str) -> None:
    with PostgresFlagSource(dsn) as flags:
        flags.write(FlagState(enabled=True, percent=1.0), actor="alice", reason="start")
        flags.write(
            FlagState(enabled=True, percent=0.0),
            actor="controller@a",
            reason="success 80% < 95%",
            evidence={"decision": "ROLLBACK", "count": 40},
        )
        newest, oldest = flags.history()
    assert (oldest.actor, oldest.reason, oldest.state.percent) == ("alice", "start", 1.0)
    assert newest.version == oldest.version + 1
    assert newest.evidence == {"decision": "ROLLBACK", "count": 40}
    assert newest.state == FlagState(enabled=True, percent=0.0)


def test_with_the_database_down_the_last_flags_stay_and_a_local_rollback_wins(tmp_path: Path) -> None:
    pg = ThrowawayPostgres().start()
    try:
        file = tmp_path / "flags.json"
        local = FileFlagSource(file, default=FlagState(enabled=True, percent=100.0))
        with PostgresFlagSource(pg.dsn(), poll_s=0.2, fallback=local) as flags:
            flags.write(FlagState(enabled=True, percent=50.0))
            pg.pause()
            assert _within(3.0, lambda: not flags.connected) is not None
            assert flags.snapshot().percent == 50.0  # last flags kept, not reset to a default
            with pytest.raises(SharedStateError, match=r"cannot reach|took more than|failed"):
                flags.write(FlagState(enabled=True, percent=100.0))
            local.write(FlagState(enabled=True, percent=0.0))  # the kill switch, written on the host
            assert flags.snapshot().effective_percent == 0.0
            pg.resume()
            assert _within(5.0, lambda: flags.connected) is not None
            assert flags.snapshot().percent == 50.0  # the database rules again once it is back
    finally:
        pg.stop()


def test_a_source_started_while_the_database_is_down_serves_its_default() -> None:
    with PostgresFlagSource(
        "postgresql://postgres@127.0.0.1:1/none", poll_s=0.2, wait_s=2.0, timeout_s=0.5
    ) as flags:
        assert not flags.connected
        assert flags.snapshot() == FlagState()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poll_s": 0.0}, "poll_s=0.0"),
        ({"poll_s": float("nan")}, "poll_s=nan"),
    ],
    ids=["zero-poll", "nan-poll"],
)
def test_invalid_settings_are_refused(dsn: str, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PostgresFlagSource(dsn, **kwargs)


def test_a_password_never_appears_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        PostgresFlagSource("mysql://user:hunter2@host/db")
    assert "hunter2" not in str(caught.value)


def test_a_rollback_whose_evidence_holds_nan_still_reaches_the_database(dsn: str) -> None:
    # A verdict over an arm with no successes carries NaN ratios; jsonb refuses NaN. The kill switch must
    # not fail on its paperwork.
    evidence = {"figures": {"latency_ratio": float("nan"), "p95_s": float("inf"), "count": 3}}
    with PostgresFlagSource(dsn) as flags:
        flags.write(FlagState(enabled=True, percent=50.0))
        flags.roll_back(reason="brownout", evidence=evidence)
        newest = flags.history(limit=1)[0]
    assert newest.state.percent == 0.0
    assert newest.evidence == {"figures": {"latency_ratio": "nan", "p95_s": "inf", "count": 3}}
