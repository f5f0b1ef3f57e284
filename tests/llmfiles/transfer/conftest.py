"""Shared pieces of the transfer tests: files, settings that never sleep, a download directory."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmfiles.transfer import TransferSettings


async def _no_sleep(_seconds: float) -> None:
    """Backoff without waiting: the retry decisions are what the tests check, not the time they take."""


@pytest.fixture
def settings() -> Callable[..., TransferSettings]:
    """Settings for tests against the mock: short read timeout (hangs end fast), no backoff sleeping."""

    def make(**overrides: Any) -> TransferSettings:
        options: dict[str, Any] = {
            "read_timeout": 0.5,
            "retries": 3,
            "sleep": _no_sleep,
            "chunk_size": 64 * 1024,
        }
        options.update(overrides)
        return TransferSettings(**options)

    return make


@pytest.fixture
def pattern_file(tmp_path: Path) -> Callable[[str, int], Path]:
    """Makes a file of `size` bytes with a position-dependent pattern (a misplaced chunk changes the hash)."""

    def make(name: str, size: int) -> Path:
        block = bytes(range(251)) * 1024  # 251 is prime: the pattern never lines up with chunk sizes
        path = tmp_path / "src" / name
        path.parent.mkdir(exist_ok=True)
        with path.open("wb") as handle:
            written = 0
            while written < size:
                piece = block[: min(len(block), size - written)]
                handle.write(piece)
                written += len(piece)
        return path

    return make


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """An empty destination directory for downloads (sources live elsewhere in tmp_path)."""
    directory = tmp_path / "dest"
    directory.mkdir()
    return directory


@pytest.fixture
def latin1_named(tmp_path: Path) -> Path:
    """A real file named by the Latin-1 bytes ``caf\\xe9.txt``: not UTF-8, so Python holds a surrogate."""
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.txt"))
    try:
        path.write_bytes(b"latin-1 named")
    except OSError as exc:  # a file system that insists on UTF-8 names (APFS) cannot hold one
        pytest.skip(f"this file system refuses a non-UTF-8 name: {exc}")
    assert path.name == "caf\udce9.txt"
    return path
