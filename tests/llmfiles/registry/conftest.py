"""Real databases for the registry suite: a SQLite file in tmp_path, and a throwaway PostgreSQL server.

The PostgreSQL server is started once per session (initdb + pg_ctl on a free port, its unix socket in a
temporary directory, as the ``postgres`` user when the tests run as root) and every test gets a fresh
database in it. Without server binaries the PostgreSQL cases skip and say how to install them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmfiles.registry import UploadRegistry, open_registry

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "apt-get update && apt-get install -y postgresql"


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _run(argv: list[str], *, stdin: str | None = None) -> str:
    """Run a PostgreSQL tool (fixed argv, no shell); on failure show what it printed."""
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


@dataclass(frozen=True)
class PostgresServer:
    bindir: Path
    port: int

    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def psql(self, sql: str) -> str:
        return _run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.dsn()],
            stdin=sql,
        )


def _server_bindir() -> Path | None:
    def version(path: str) -> int:
        return int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0

    for bindir in sorted(glob.glob(PG_BIN_GLOB), key=version, reverse=True):
        if all(os.access(Path(bindir) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return Path(bindir)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _server_bindir()
    if bindir is None:
        pytest.skip(f"no PostgreSQL server binaries under {PG_BIN_GLOB}; install them with `{INSTALL_HINT}`")
    root = Path(tempfile.mkdtemp(prefix="llmfiles-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    # Durability off: the cluster lives for one test session, speed is all that matters.
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=100"
    )
    initdb = [
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-sync",
    ]
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-w"]
    try:
        _run([*run_as, *initdb])
        _run([*pg_ctl, "-l", str(root / "server.log"), "-o", options, "start"])
        yield PostgresServer(bindir=bindir, port=port)
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


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
    server: PostgresServer = request.getfixturevalue("postgres_server")
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
