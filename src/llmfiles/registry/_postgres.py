"""`PostgresRegistry`: the backend for several hosts sharing one registry, over an asyncpg pool.

Transactions run at READ COMMITTED; the shared statements stay correct there because each is a single-row
conditional write. Two things need more than a row lock, and take a transaction-scoped advisory lock:
migrations (two hosts opening a fresh database at once) and clean-up of one provider (two cleaners must
not both evict for the same excess).

asyncpg is an optional dependency (``llmfiles[postgres]``): it is imported only when a registry connects,
so SQLite users never need it.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from llmfiles._errors import ConfigError, RegistryError
from llmfiles.registry._sql import Clock, Row, SQLRegistry, Tx

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

SCHEMES = ("postgresql", "postgres")

# First key of every advisory lock we take, so ours never collide with an application's single-key locks.
_LOCK_CLASS = 0x11F5
_LOCK_SCHEMA = "SELECT pg_advisory_xact_lock($1, 0)"
_LOCK_PROVIDER = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

# For DSNs urlsplit refuses: the password of ``scheme://user:password@`` and of ``?password=``.
_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*")


def _passwords(dsn: str) -> list[str]:
    """Every password `dsn` carries: libpq and asyncpg take one in the user part and in ``?password=``."""
    parts = urlsplit(dsn)
    found = [parts.password] if parts.password else []
    return found + [value for key, value in parse_qsl(parts.query) if key == "password" and value]


def redact_dsn(dsn: str) -> str:
    """`dsn` without its password(s), for messages and logs; unchanged when it carries none."""
    try:
        if not _passwords(dsn):
            return dsn
    except ValueError:  # not a URL (say a broken IPv6 host), yet it may still hold a password
        return _QUERY_PASSWORD.sub(
            r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", dsn)
        )  # a split-and-join round trip would rewrite the URL the user typed (sqlite:// -> sqlite:)
    parts = urlsplit(dsn)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    if any(key == "password" for key, _ in parse_qsl(parts.query)):
        query = [(key, "***" if key == "password" else value) for key, value in parse_qsl(parts.query)]
        parts = parts._replace(query=urlencode(query, safe="*/"))
    return urlunsplit(parts)


def _scrub(text: str, dsn: str) -> str:
    """`text` with the DSN's passwords masked: client-side errors may quote the DSN they failed to use."""
    for password in _passwords(dsn):
        text = text.replace(password, "***")
    return text


class _PostgresTx:
    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return [tuple(row) for row in await self._conn.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        row = await self._conn.fetchrow(sql, *args)
        return None if row is None else tuple(row)

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute(sql, *args)


class PostgresRegistry(SQLRegistry):
    """The upload registry in PostgreSQL, for several hosts that share it.

    Args:
        dsn: ``postgresql://user:password@host:port/database`` (a unix socket: ``?host=/run/postgresql``).
        clock: wall-clock seconds for leases and clean-up order (``time.time``); keep hosts' clocks in sync.
        min_size: connections the pool keeps open.
        max_size: connections the pool opens at most.
        command_timeout_s: longest a statement may run before `RegistryError`.

    Raises:
        ConfigError: the DSN is not a ``postgresql://`` URL, the pool sizes are out of range, or asyncpg
            is not installed.
    """

    def __init__(
        self,
        dsn: str,
        *,
        clock: Clock = time.time,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(clock=clock)
        shown = redact_dsn(dsn)
        try:
            scheme = urlsplit(dsn).scheme
        except ValueError as exc:
            raise ConfigError(f"dsn={shown!r} is not a URL: {exc}; use postgresql://user@host/db") from None
        if scheme not in SCHEMES:
            raise ConfigError(f"dsn={shown!r} must start with postgresql://, e.g. postgresql://user@host/db")
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigError(
                f"min_size={min_size!r}, max_size={max_size!r}: need 0 <= min_size <= max_size, max_size >= 1"
            )
        if not command_timeout_s > 0:
            raise ConfigError(f"command_timeout_s={command_timeout_s!r} must be positive, e.g. 30")
        if importlib.util.find_spec("asyncpg") is None:
            raise ConfigError(
                f"dsn={shown!r} needs the asyncpg package; install it with: pip install 'llmfiles[postgres]'"
            )
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout_s = command_timeout_s
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._database_errors: tuple[type[Exception], ...] = (OSError, TimeoutError)
        self.backend = f"PostgreSQL database {shown!r}"

    def __repr__(self) -> str:
        return f"PostgresRegistry({redact_dsn(self._dsn)!r})"

    async def _connect(self) -> None:
        import asyncpg

        # Failures of the database or the way to it; anything else is a bug and should surface as itself.
        self._database_errors = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                command_timeout=self._command_timeout_s,
            )
        except (*self._database_errors, ValueError) as exc:
            raise RegistryError(
                f"cannot connect to {self.backend}: {type(exc).__name__}: {_scrub(str(exc), self._dsn)}; "
                "check the host, port, user, database and that the server is running"
            ) from exc

    async def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        pool = self._pool
        if pool is None:
            raise RegistryError(f"{self.backend} is not open; use `async with registry:` first")
        try:
            # Reads take one snapshot (REPEATABLE READ) so usage() never mixes two moments.
            isolation: Final = "read_committed" if write else "repeatable_read"
            async with pool.acquire() as conn, conn.transaction(isolation=isolation, readonly=not write):
                yield _PostgresTx(conn)
        except self._database_errors as exc:
            raise RegistryError(
                f"{self.backend} failed: {type(exc).__name__}: {_scrub(str(exc), self._dsn)}"
            ) from exc

    async def _lock_schema(self, tx: Tx) -> None:
        await tx.execute(_LOCK_SCHEMA, _LOCK_CLASS)

    async def _lock_provider(self, tx: Tx, provider: str) -> None:
        await tx.execute(_LOCK_PROVIDER, _LOCK_CLASS, provider)
