"""Shared by the llmfiles suite: the real mock provider, and a throwaway PostgreSQL server per session."""

from collections.abc import Iterator
from typing import Any

import pytest

import mock_provider
from harness._engines import POSTGRES_INSTALL_HINT, EngineError, ThrowawayPostgres, postgres_bindir


@pytest.fixture
def mock() -> Iterator[Any]:
    """A calm mock provider in a background thread on a free loopback port, stopped after the test."""
    with mock_provider.MockProvider("calm", seed=3) as running:
        yield running


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """A real PostgreSQL cluster on a free port for the whole session; skips with an install hint."""
    if postgres_bindir() is None:
        pytest.skip(f"no PostgreSQL server binaries; install them with `{POSTGRES_INSTALL_HINT}`")
    try:
        server = ThrowawayPostgres().start()
    except EngineError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
