from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from llmfiles import ConfigError
from llmfiles.transfer import TransferSettings
from llmfiles.transfer._retry import backoff_delay, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param(" 1.5 ", 1.5, id="fractional"),
        pytest.param("-4", 0.0, id="negative-is-now"),
        pytest.param(
            format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True), 30.0, id="http-date"
        ),
        pytest.param(
            format_datetime(datetime.fromtimestamp(NOW - 30, UTC), usegmt=True), 0.0, id="past-date"
        ),
        pytest.param("soon", None, id="garbage"),
        pytest.param("inf", None, id="infinite"),
        pytest.param("nan", None, id="nan"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    settings = TransferSettings(backoff_base=0.5, backoff_max=4.0, jitter=lambda: 1.0)
    assert [backoff_delay(n, settings) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_delay(3, TransferSettings(jitter=lambda: 0.25)) == 0.25 * 2.0


def test_retry_after_wins_but_is_capped() -> None:
    settings = TransferSettings(retry_after_max=10.0, jitter=lambda: 1.0)
    assert backoff_delay(1, settings, retry_after=7.0) == 7.0
    assert backoff_delay(1, settings, retry_after=3600.0) == 10.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert backoff_delay(10_000, TransferSettings(jitter=lambda: 1.0)) == 8.0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("read_timeout", 0),
        ("connect_timeout", -1.0),
        ("backoff_base", -0.1),
        ("retries", -1),
        ("max_concurrency", 0),
        ("chunk_size", 100),
        ("chunk_size", 1 << 30),
        ("write_batch_size", 100),
        ("write_batch_size", 1 << 30),
    ],
)
def test_invalid_settings_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"{key}={value!r}"):
        TransferSettings(**{key: value})  # type: ignore[arg-type]
