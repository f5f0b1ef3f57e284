"""Real databases for the registry suite: a SQLite file in tmp_path, and the session's PostgreSQL server.

Every PostgreSQL test gets a fresh schema in the throwaway server of ``tests/llmfiles/conftest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness._engines import ThrowawayPostgres
from llmfiles.registry import UploadRegistry, open_registry


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass(frozen=True)
class Backend:
    """One test's empty database: its registry URL and a way to run raw SQL on it behind the registry."""

    name: str
    url: str
    sql: Callable[[str], str]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "registry.db"

        def sqlite_sql(statement: str) -> str:
            import sqlite3

            with sqlite3.connect(path) as conn:
                rows = conn.execute(statement).fetchall()
            return "\n".join("|".join(str(value) for value in row) for row in rows)

        yield Backend("sqlite", f"sqlite:///{path}", sqlite_sql)
        return
    server: ThrowawayPostgres = request.getfixturevalue("postgres_server")
    # A schema per test, not a database: CREATE DATABASE costs half a second, CREATE SCHEMA a millisecond.
    # asyncpg passes unknown DSN parameters on as server settings, so the registry sees only this schema.
    schema = f"registry_{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE SCHEMA {schema}")
    try:
        yield Backend(
            "postgres",
            f"{server.dsn()}?search_path={schema}",
            lambda statement: server.psql(f"SET search_path TO {schema};\n{statement}"),
        )
    finally:
        server.psql(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
async def registry(backend: Backend, clock: FakeClock) -> AsyncIterator[UploadRegistry]:
    async with open_registry(backend.url, clock=clock) as opened:
        yield opened
