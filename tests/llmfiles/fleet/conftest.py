"""Each fleet test gets its own database in the session's PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import structlog

from harness._engines import ThrowawayPostgres


@pytest.fixture
def dsn(postgres_server: ThrowawayPostgres) -> Iterator[str]:
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    postgres_server.psql(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.dsn(name)
    finally:
        postgres_server.psql(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    # The CLI commands configure structlog for the process (onto the runner's stream, closed after it):
    # leave it as other tests expect it.
    yield
    structlog.reset_defaults()
