"""Settings: new and old environment names, and start-up failures that quote the key and the value."""

from pathlib import Path

import pytest

from llmfiles import ConfigError
from llmfiles.rollout import load_settings, load_transfer_settings
from llmfiles.transfer import TransferSettings

OLD_AND_NEW = [
    "ASYNC_UPLOAD_ENABLED",
    "ASYNC_UPLOAD_ROLLOUT",
    "ASYNC_UPLOAD_FALLBACK",
    "ASYNC_UPLOAD_MAX_RETRIES",
    "ASYNC_UPLOAD_TIMEOUT",
    "LLMFILES_ENABLED",
    "LLMFILES_ROLLOUT_PERCENT",
    "LLMFILES_FALLBACK",
    "LLMFILES_MAX_RETRIES",
    "LLMFILES_TIMEOUT_S",
    "LLMFILES_MAX_CONCURRENCY",
    "LLMFILES_STAGE",
    "LLMFILES_FLAG_FILE",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OLD_AND_NEW:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_safe() -> None:
    settings = load_settings()
    assert (settings.enabled, settings.rollout_percent, settings.fallback) == (False, 0.0, True)
    assert settings.detection_bound_s == 40.0  # 10 s x (3 + 1): within the 60 s asked for


def test_old_names_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNC_UPLOAD_ENABLED", "true")
    monkeypatch.setenv("ASYNC_UPLOAD_ROLLOUT", "10%")
    monkeypatch.setenv("ASYNC_UPLOAD_FALLBACK", "0")
    monkeypatch.setenv("ASYNC_UPLOAD_MAX_RETRIES", "5")
    monkeypatch.setenv("ASYNC_UPLOAD_TIMEOUT", "12.5")
    settings = load_settings()
    assert settings.enabled is True
    assert settings.rollout_percent == 10.0
    assert settings.fallback is False
    assert settings.max_retries == 5
    assert settings.timeout_s == 12.5


def test_the_flags_reach_the_transfer_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNC_UPLOAD_MAX_RETRIES", "1")
    monkeypatch.setenv("ASYNC_UPLOAD_TIMEOUT", "12.5")
    monkeypatch.setenv("LLMFILES_MAX_CONCURRENCY", "3")
    transfer = load_settings().transfer_settings()
    assert (transfer.retries, transfer.max_concurrency) == (1, 3)
    assert (transfer.read_timeout, transfer.write_timeout) == (12.5, 12.5)
    assert transfer.connect_timeout == TransferSettings().connect_timeout


def test_unset_flags_leave_the_transfer_clients_defaults() -> None:
    # One default per setting: the transfer client's. An unset variable must not change the client.
    transfer, defaults = load_settings().transfer_settings(), TransferSettings()
    assert (transfer.retries, transfer.max_concurrency) == (defaults.retries, defaults.max_concurrency)
    assert (transfer.read_timeout, transfer.write_timeout) == (defaults.read_timeout, defaults.write_timeout)


def test_transfer_settings_alone_ignore_the_rollouts_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LLMFILES_FLAG_FILE", str(tmp_path / "not-yet.json"))
    monkeypatch.setenv("LLMFILES_STAGE", "bogus")
    monkeypatch.setenv("ASYNC_UPLOAD_MAX_RETRIES", "1")
    monkeypatch.setenv("LLMFILES_TIMEOUT_S", "7.5")
    with pytest.raises(ConfigError):
        load_settings()

    transfer = load_transfer_settings()
    assert (transfer.retries, transfer.read_timeout, transfer.write_timeout) == (1, 7.5, 7.5)
    monkeypatch.setenv("LLMFILES_MAX_CONCURRENCY", "0")
    with pytest.raises(ConfigError, match=r"invalid transfer settings.*LLMFILES_MAX_CONCURRENCY='0'"):
        load_transfer_settings()


def test_new_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNC_UPLOAD_ROLLOUT", "10")
    monkeypatch.setenv("LLMFILES_ROLLOUT_PERCENT", "1")
    assert load_settings().rollout_percent == 1.0


def test_keyword_overrides() -> None:
    assert load_settings(rollout_percent=50, max_concurrency=16).max_concurrency == 16


@pytest.mark.parametrize(
    ("env", "value", "quoted"),
    [
        ("ASYNC_UPLOAD_ROLLOUT", "150", "ASYNC_UPLOAD_ROLLOUT='150'"),
        ("LLMFILES_ROLLOUT_PERCENT", "-1", "LLMFILES_ROLLOUT_PERCENT='-1'"),
        ("ASYNC_UPLOAD_ENABLED", "perhaps", "ASYNC_UPLOAD_ENABLED='perhaps'"),
        ("ASYNC_UPLOAD_TIMEOUT", "0", "ASYNC_UPLOAD_TIMEOUT='0'"),
        ("LLMFILES_MAX_RETRIES", "many", "LLMFILES_MAX_RETRIES='many'"),
        ("LLMFILES_MAX_CONCURRENCY", "0", "LLMFILES_MAX_CONCURRENCY='0'"),
        (
            "LLMFILES_STAGE",
            "bogus",
            "LLMFILES_STAGE='bogus': Value error, unknown stage; use one of: off, 1%",
        ),
        (
            "LLMFILES_FLAG_FILE",
            "/nonexistent/flags.json",
            "LLMFILES_FLAG_FILE='/nonexistent/flags.json': Value error, no such flag file",
        ),
    ],
    ids=[
        "rollout-over-100",
        "percent-negative",
        "enabled-not-bool",
        "timeout-zero",
        "retries-nan",
        "concurrency-0",
        "unknown-stage",
        "missing-flag-file",
    ],
)
def test_invalid_values_fail_at_start_up(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, quoted: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match="invalid rollout settings") as info:
        load_settings()
    assert quoted in str(info.value)


def test_every_problem_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNC_UPLOAD_ROLLOUT", "150")
    monkeypatch.setenv("ASYNC_UPLOAD_TIMEOUT", "abc")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "ASYNC_UPLOAD_ROLLOUT='150'" in str(raised.value)
    assert "ASYNC_UPLOAD_TIMEOUT='abc'" in str(raised.value)


def test_unprefixed_names_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLED", "true")
    monkeypatch.setenv("ROLLOUT_PERCENT", "50")
    settings = load_settings()
    assert (settings.enabled, settings.rollout_percent) == (False, 0.0)


def test_an_existing_flag_file_and_a_known_stage_are_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "flags.json").write_text("{}")
    monkeypatch.setenv("LLMFILES_FLAG_FILE", str(tmp_path / "flags.json"))
    monkeypatch.setenv("LLMFILES_STAGE", "10%")
    settings = load_settings()
    assert (settings.flag_file, settings.stage) == (tmp_path / "flags.json", "10%")
