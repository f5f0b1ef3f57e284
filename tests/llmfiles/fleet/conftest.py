"""Each fleet test gets its own database in the session's PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from harness._engines import ThrowawayPostgres


@pytest.fixture
def dsn(postgres_server: ThrowawayPostgres) -> Iterator[str]:
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    postgres_server.psql(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.dsn(name)
    finally:
        postgres_server.psql(f"DROP DATABASE {name} WITH (FORCE)")
