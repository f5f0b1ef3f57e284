"""Flag sources: environment, shared file (re-read on change), OpenFeature, and the in-process pin."""

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openfeature import api
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from llmfiles import ConfigError
from llmfiles.rollout import (
    EnvFlagSource,
    FileFlagSource,
    FlagSource,
    FlagState,
    OpenFeatureFlagSource,
    OverridableFlagSource,
    WritableFlagSource,
    load_settings,
)


def test_env_source_reads_settings() -> None:
    source = EnvFlagSource(load_settings(enabled=True, rollout_percent=10, fallback=False))
    assert source.snapshot() == FlagState(enabled=True, percent=10, fallback=False)
    assert isinstance(source, FlagSource)
    assert not isinstance(source, WritableFlagSource)


def test_kill_switch_zeroes_the_effective_percent() -> None:
    assert FlagState(enabled=False, percent=50).effective_percent == 0.0
    assert FlagState(enabled=True, percent=50).effective_percent == 50.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"percent": 101}, "percent=101"),
        ({"percent": float("nan")}, "percent=nan"),
        ({"enabled": "yes"}, "enabled='yes'"),
        ({"fallback": 1}, "fallback=1"),
    ],
    ids=["percent-high", "percent-nan", "enabled-str", "fallback-int"],
)
def test_invalid_flag_state(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FlagState(**kwargs)


def test_missing_file_means_the_default(tmp_path: Path) -> None:
    source = FileFlagSource(tmp_path / "flags.json", default=FlagState(enabled=True, percent=1))
    assert source.snapshot().percent == 1


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("flags.json", '{"enabled": true, "percent": 10, "fallback": false, "note": "ignored"}'),
        ("flags.toml", "enabled = true\npercent = 10.0\nfallback = false\n"),
    ],
)
def test_json_and_toml_files(tmp_path: Path, name: str, content: str) -> None:
    (tmp_path / name).write_text(content)
    assert FileFlagSource(tmp_path / name).snapshot() == FlagState(enabled=True, percent=10, fallback=False)


def test_a_write_by_one_instance_reaches_another(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    writer, reader = FileFlagSource(path), FileFlagSource(path)
    writer.write(FlagState(enabled=True, percent=50))
    assert reader.snapshot().percent == 50
    writer.write(FlagState(enabled=True, percent=0))
    assert reader.snapshot().percent == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.json"]


def test_toml_write_round_trips(tmp_path: Path) -> None:
    source = FileFlagSource(tmp_path / "flags.toml")
    source.write(FlagState(enabled=True, percent=12.5, fallback=False))
    assert FileFlagSource(tmp_path / "flags.toml").snapshot() == FlagState(True, 12.5, False)


def test_an_edit_in_place_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text('{"enabled": true, "percent": 1}')
    source = FileFlagSource(path)
    assert source.snapshot().percent == 1
    path.write_text('{"enabled": true, "percent": 10}')
    os.utime(path, ns=(1, 1))  # an mtime that certainly differs, whatever the filesystem's resolution
    assert source.snapshot().percent == 10


def test_invalid_file_fails_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text('{"percent": 250}')
    with pytest.raises(ConfigError, match=r"flag_file=.*percent=250"):
        FileFlagSource(path)


def test_file_turning_invalid_later_keeps_the_last_good_state(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text('{"enabled": true, "percent": 10}')
    source = FileFlagSource(path)
    path.write_text("{not json")
    assert source.snapshot().percent == 10


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("flags.yaml", "", "must end in .json or .toml"),
        ("flags.json", "[1]", "must hold an object"),
        ("flags.toml", "percent = ", "cannot be parsed"),
    ],
    ids=["suffix", "not-object", "bad-toml"],
)
def test_bad_flag_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError, match=message):
        FileFlagSource(tmp_path / name)


@pytest.fixture
def openfeature_client() -> Iterator[tuple[Any, str]]:
    domain = f"llmfiles-test-{uuid.uuid4().hex}"
    yield api.get_client(domain=domain), domain
    api.clear_providers()


def set_flags(domain: str, flags: dict[str, Any]) -> None:
    api.set_provider(
        InMemoryProvider({name: InMemoryFlag("on", {"on": value}) for name, value in flags.items()}),
        domain=domain,
    )


def test_openfeature_percentage_and_kill_switch(openfeature_client: tuple[Any, str]) -> None:
    client, domain = openfeature_client
    set_flags(domain, {"llmfiles-async-upload-percent": 25.0, "llmfiles-async-upload-enabled": True})
    source = OpenFeatureFlagSource(client)
    assert source.snapshot() == FlagState(enabled=True, percent=25.0, fallback=True)
    set_flags(domain, {"llmfiles-async-upload-percent": 25.0, "llmfiles-async-upload-enabled": False})
    assert source.snapshot().effective_percent == 0.0


def test_openfeature_missing_or_invalid_flags_use_the_default(openfeature_client: tuple[Any, str]) -> None:
    client, domain = openfeature_client
    default = FlagState(enabled=True, percent=1.0)
    set_flags(domain, {"llmfiles-async-upload-percent": 400.0})
    assert OpenFeatureFlagSource(client, default=default).snapshot() == default
    set_flags(domain, {})
    assert OpenFeatureFlagSource(client, default=default).snapshot() == default


class Mutable:
    def __init__(self, state: FlagState) -> None:
        self.state = state

    def snapshot(self) -> FlagState:
        return self.state


def test_pin_cuts_the_percentage_at_once_and_holds_on_a_static_source() -> None:
    inner = Mutable(FlagState(enabled=True, percent=10))
    flags = OverridableFlagSource(inner)
    flags.pin(0)
    assert flags.snapshot().effective_percent == 0
    assert flags.snapshot().effective_percent == 0
    assert flags.pinned == 0


def test_pin_yields_once_the_source_changes() -> None:
    inner = Mutable(FlagState(enabled=True, percent=10))
    flags = OverridableFlagSource(inner)
    flags.pin(0)
    inner.state = FlagState(enabled=True, percent=1)  # e.g. a promotion written by the CLI
    assert flags.snapshot().percent == 1
    assert flags.pinned is None


def test_pin_validates_its_percentage() -> None:
    with pytest.raises(ConfigError, match="percent=-1"):
        OverridableFlagSource(Mutable(FlagState())).pin(-1)


@pytest.mark.parametrize("suffix", [".json", ".toml"])
@settings(max_examples=30)  # each example fsyncs a file and its directory
@given(
    enabled=st.booleans(),
    hundredths=st.integers(min_value=0, max_value=10_000),
    fallback=st.booleans(),
)
def test_written_state_reads_back_identical(
    suffix: str, enabled: bool, hundredths: int, fallback: bool
) -> None:
    state = FlagState(enabled=enabled, percent=hundredths / 100, fallback=fallback)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"flags{suffix}"
        FileFlagSource(path).write(state)
        assert FileFlagSource(path).snapshot() == state


def test_a_rollback_written_by_another_process_is_seen_on_the_next_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    FileFlagSource(path).write(FlagState(enabled=True, percent=10))
    reader = FileFlagSource(path)
    assert reader.snapshot().effective_percent == 10
    script = (
        "import sys; from llmfiles.rollout import FileFlagSource, FlagState; "
        "FileFlagSource(sys.argv[1]).write(FlagState(enabled=True, percent=0))"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    assert reader.snapshot().effective_percent == 0


def test_roll_back_keeps_the_other_flags_of_a_readable_file(tmp_path: Path) -> None:
    source = FileFlagSource(tmp_path / "flags.json")
    source.write(FlagState(enabled=True, percent=50.0, fallback=False))
    assert source.roll_back() is None
    assert FileFlagSource(tmp_path / "flags.json").snapshot() == FlagState(True, 0.0, False)


@pytest.mark.parametrize("name", ["flags.json", "flags.toml"])
def test_roll_back_sets_an_unparsable_file_aside_and_writes_the_flags_off(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text('{"enabled": true, "percent": 5')  # truncated mid-edit
    source = FileFlagSource(path, strict=False, clock=lambda: 1_800_000_000.0)
    moved = source.roll_back()
    assert moved == str(tmp_path / f"{name}.corrupt-20270115T080000.000000Z")
    assert Path(moved).read_text() == '{"enabled": true, "percent": 5'
    assert FileFlagSource(path).snapshot() == FlagState(enabled=False, percent=0.0)
    assert source.snapshot() == FlagState(enabled=False, percent=0.0)


def test_roll_back_creates_a_missing_file_with_the_flags_off(tmp_path: Path) -> None:
    assert FileFlagSource(tmp_path / "new" / "flags.json").roll_back() is None
    assert FileFlagSource(tmp_path / "new" / "flags.json").snapshot() == FlagState()


def test_roll_back_raises_when_nothing_can_be_written(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    with pytest.raises(NotADirectoryError):
        FileFlagSource(tmp_path / "not-a-dir" / "flags.json", strict=False).roll_back()


def test_a_lenient_source_starts_on_the_default_over_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "flags.json").write_text("{nope")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        FileFlagSource(tmp_path / "flags.json")
    assert FileFlagSource(tmp_path / "flags.json", strict=False).snapshot() == FlagState()
