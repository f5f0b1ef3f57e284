"""Bad configuration and bad arguments get a typed error that quotes them, and never a password."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import llmfiles.registry
from llmfiles import ConfigError
from llmfiles.registry import (
    ContentKey,
    PostgresRegistry,
    RegistryError,
    SQLiteRegistry,
    UploadRegistry,
    open_registry,
)

SHA = "a" * 64


def test_public_names_are_pinned() -> None:
    assert sorted(llmfiles.registry.__all__) == [
        "Claim",
        "ClaimDecision",
        "ClaimLostError",
        "CleanupItem",
        "CleanupResult",
        "ContentKey",
        "DEFAULT_LEASE_S",
        "PostgresRegistry",
        "RecordState",
        "ReferenceCountError",
        "RegistryError",
        "SQLiteRegistry",
        "UploadRecord",
        "UploadRegistry",
        "Usage",
        "clean_up",
        "ensure_uploaded",
        "open_registry",
        "redact_dsn",
    ]


@pytest.mark.parametrize(
    ("url", "kind", "path"),
    [
        pytest.param("sqlite:///registry.db", SQLiteRegistry, "registry.db", id="relative"),
        pytest.param("sqlite:////tmp/registry.db", SQLiteRegistry, "/tmp/registry.db", id="absolute"),
        pytest.param("sqlite:///:memory:", SQLiteRegistry, ":memory:", id="memory"),
        pytest.param("postgresql://u:pw@db.example:5432/files", PostgresRegistry, None, id="postgresql"),
        pytest.param("postgres://u@db.example/files", PostgresRegistry, None, id="postgres"),
    ],
)
def test_open_registry_picks_the_backend(url: str, kind: type, path: str | None) -> None:
    registry = open_registry(url)
    assert isinstance(registry, kind)
    assert isinstance(registry, UploadRegistry)
    if path is not None:
        assert isinstance(registry, SQLiteRegistry)
        assert registry.path == path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("mysql://u@h/db", "url='mysql://u@h/db' names no registry backend", id="unknown-scheme"),
        pytest.param("registry.db", "url='registry.db' names no registry backend", id="bare-path"),
        pytest.param("sqlite://", "url='sqlite://' is not a SQLite URL with a path", id="no-path"),
        pytest.param("sqlite://host/x.db", "is not a SQLite URL with a path", id="sqlite-host"),
        pytest.param("sqlite:///x.db?mode=ro", "is not a SQLite URL with a path", id="sqlite-query"),
        pytest.param("mysql://u:hunter2@h/db", "url='mysql://u:\\*\\*\\*@h/db'", id="password-redacted"),
        pytest.param(
            "postgresql://u:hunter2@[::1/db",
            "url='postgresql://u:\\*\\*\\*@\\[::1/db' is not a URL",
            id="unparseable",
        ),
        pytest.param(
            "postgresql://u@[::1/db?password=hunter2",
            "password=\\*\\*\\*' is not a URL",
            id="unparseable-query",
        ),
        pytest.param("sqlite:////no/such/dir/x.db", "directory that does not exist", id="missing-dir"),
    ],
)
def test_open_registry_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        open_registry(url)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(("", "batch", SHA), "provider='' is empty", id="no-provider"),
        pytest.param(("kimi", "", SHA), "purpose='' is empty", id="no-purpose"),
        pytest.param(("kimi", "batch", "A" * 64), "sha256='AAAA.*' is not a SHA-256 digest", id="upper-case"),
        pytest.param(("kimi", "batch", "a" * 63), "is not a SHA-256 digest", id="short"),
        pytest.param(("kimi", "batch", "g" * 64), "is not a SHA-256 digest", id="not-hex"),
    ],
)
def test_content_keys_are_validated(fields: tuple[str, str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ContentKey(*fields)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"dsn": "mysql://u@h/db"}, "must start with postgresql://", id="scheme"),
        pytest.param({"dsn": "postgresql://u@h/db", "min_size": 5, "max_size": 2}, "min_size=5", id="sizes"),
        pytest.param({"dsn": "postgresql://u@h/db", "max_size": 0}, "max_size=0", id="empty-pool"),
        pytest.param(
            {"dsn": "postgresql://u@h/db", "command_timeout_s": 0}, "command_timeout_s=0", id="timeout"
        ),
    ],
)
def test_postgres_settings_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PostgresRegistry(**kwargs)  # type: ignore[arg-type]


def test_sqlite_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="busy_timeout_s=0 must be positive"):
        SQLiteRegistry(tmp_path / "r.db", busy_timeout_s=0)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        pytest.param("postgresql://u:hunter2@h/db", "postgresql://u:***@h/db", id="user-part"),
        pytest.param(
            "postgresql://u@h/db?sslmode=require&password=hunter2",
            "postgresql://u@h/db?sslmode=require&password=***",
            id="query",
        ),
    ],
)
def test_postgres_repr_hides_the_password(dsn: str, shown: str) -> None:
    assert repr(PostgresRegistry(dsn)) == f"PostgresRegistry({shown!r})"


async def test_an_unreachable_postgres_is_a_registry_error_without_the_password() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    registry = PostgresRegistry(f"postgresql://u:hunter2@127.0.0.1:{port}/db")
    with pytest.raises(RegistryError, match="cannot connect to PostgreSQL database") as refused:
        await registry.open()
    assert "hunter2" not in str(refused.value)
    assert "u:***@127.0.0.1" in str(refused.value)


async def test_sqlite_opens_in_wal_mode_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    async with SQLiteRegistry(path) as registry:
        assert await registry.get(ContentKey("kimi", "batch", SHA)) is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    registry = await SQLiteRegistry(path)
    await registry.close()


async def test_a_file_that_is_not_a_database_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RegistryError, match=r"r\.db"):
        await SQLiteRegistry(path).open()


async def test_sqlite_reads_pass_a_busy_writer_and_writes_time_out_typed(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    key = ContentKey("kimi", "batch", SHA)
    async with SQLiteRegistry(path, busy_timeout_s=0.05) as registry:
        other_process = sqlite3.connect(path, isolation_level=None)
        try:
            other_process.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            assert await registry.get(key) is None
            with pytest.raises(RegistryError, match="database is locked"):
                await registry.claim(key, size=1)
            other_process.execute("ROLLBACK")
            assert (await registry.claim(key, size=1)).record.size == 1
        finally:
            other_process.close()


def test_sqlite_users_need_no_asyncpg() -> None:
    # A fresh interpreter where `import asyncpg` fails, as when llmfiles[postgres] is not installed.
    script = (
        "import sys; sys.modules['asyncpg'] = None\n"
        "from llmfiles.registry import PostgresRegistry, open_registry\n"
        "print(open_registry('sqlite:///:memory:'))\n"
        "PostgresRegistry('postgresql://u@h/db')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "SQLiteRegistry(':memory:')"
    assert "ConfigError: dsn='postgresql://u@h/db' needs the asyncpg package" in result.stderr
    assert "pip install 'llmfiles[postgres]'" in result.stderr
