"""`SQLiteRegistry`: the default backend, one database file in WAL mode, shared by the processes of one host.

aiosqlite runs the connection in its own thread, so no query blocks the event loop. One connection serves
the whole registry and an asyncio lock keeps its transactions from interleaving; ``BEGIN IMMEDIATE`` takes
the write lock up front, so transactions of other processes wait (up to the busy timeout) instead of
failing half-way when they try to upgrade a read lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from llmfiles._errors import ConfigError, RegistryError
from llmfiles.registry._sql import Clock, Row, SQLRegistry, Tx

MEMORY = ":memory:"


@functools.lru_cache(maxsize=64)
def _qmark(sql: str) -> str:
    """``$1`` -> ``?1``: SQLite's numbered parameters, so one statement text serves both backends."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


class _SQLiteTx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return list(await self._conn.execute_fetchall(_qmark(sql), args))

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: object) -> None:
        async with self._conn.execute(_qmark(sql), args):
            pass


class SQLiteRegistry(SQLRegistry):
    """The upload registry in one SQLite file (WAL mode); the default backend.

    Args:
        path: the database file (created with its schema on open; its directory must exist), or
            ``":memory:"`` for a private registry that lives as long as it is open.
        clock: wall-clock seconds for leases and clean-up order (``time.time``).
        busy_timeout_s: how long a transaction waits for another process's write lock before
            `RegistryError`.

    Raises:
        ConfigError: the directory does not exist or `busy_timeout_s` is not positive.

    Close it (``async with`` does): aiosqlite's connection thread is not a daemon, so an open registry
    keeps the interpreter from exiting.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Clock = time.time, busy_timeout_s: float = 30.0
    ) -> None:
        super().__init__(clock=clock)
        self._path = os.fspath(path)
        if self._path != MEMORY and not Path(self._path).parent.is_dir():
            raise ConfigError(
                f"path={self._path!r} is in a directory that does not exist; create it or choose another path"
            )
        if not busy_timeout_s > 0:
            raise ConfigError(f"busy_timeout_s={busy_timeout_s!r} must be positive, e.g. 30")
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self.backend = f"SQLite database {self._path!r}"

    @property
    def path(self) -> str:
        """The database file (or ``":memory:"``)."""
        return self._path

    def __repr__(self) -> str:
        return f"SQLiteRegistry({self._path!r})"

    async def _connect(self) -> None:
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves instead of sqlite3's deferred BEGIN.
            conn = await aiosqlite.connect(self._path, isolation_level=None)
        except sqlite3.Error as exc:
            raise RegistryError(
                f"cannot open {self.backend}: {exc}; check the path and its permissions"
            ) from exc
        try:
            await conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")
            if self._path != MEMORY:
                async with conn.execute("PRAGMA journal_mode = WAL") as cursor:
                    mode = await cursor.fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise RegistryError(f"{self.backend} refused WAL mode; put it on a local filesystem")
                # In WAL mode NORMAL loses no committed data on a crash, only on power loss.
                await conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise RegistryError(f"cannot set up {self.backend}: {exc}") from exc
            raise
        self._conn = conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        conn = self._conn
        if conn is None:
            raise RegistryError(f"{self.backend} is not open; use `async with registry:` first")
        async with self._lock:
            try:
                try:
                    # A deferred BEGIN reads a WAL snapshot without waiting for other processes' writers.
                    await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
                    yield _SQLiteTx(conn)
                    await conn.execute("COMMIT")
                except BaseException:
                    # Unconditionally, not `if conn.in_transaction`: a cancelled BEGIN or COMMIT may still
                    # be queued in aiosqlite's thread. Its queue runs in order, so this ROLLBACK lands
                    # after it; when no transaction is open by then, SQLite says so and nothing is lost.
                    with contextlib.suppress(sqlite3.OperationalError):
                        await conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise RegistryError(
                    f"{self.backend} failed: {exc}; if it is locked, another process holds it too long"
                ) from exc

    async def _lock_schema(self, tx: Tx) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the only write lock."""

    async def _lock_provider(self, tx: Tx, provider: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the only write lock."""
