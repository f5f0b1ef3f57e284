"""A PostgreSQL connection owned by a background thread, for callers that are synchronous.

The rollout's seams are synchronous on purpose: `FlagSource.snapshot` runs on every dispatched upload and
`StateStore.load`/`save` inside the controller's check, which the service runs in a worker thread. asyncpg
(the driver the registry already uses) is async-only, so `PgWorker` runs its own event loop in a daemon
thread and hands each call to it with ``run_coroutine_threadsafe``: one driver for the whole library, and
a blocked database never blocks the caller's event loop for longer than the call's timeout.

asyncpg is an optional dependency (``llmfiles[postgres]``), imported when a worker first connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TypeVar

from llmfiles._errors import ConfigError, SharedStateError
from llmfiles.registry import redact_dsn

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")

SCHEMES = ("postgresql://", "postgres://")

# The tables the fleet shares. Created on first use (idempotent), so a fresh database needs no migration
# step; every statement is one row or one append, so READ COMMITTED is enough.
SCHEMA = """
CREATE TABLE IF NOT EXISTS llmfiles_flags (
    name text PRIMARY KEY,
    enabled boolean NOT NULL,
    percent double precision NOT NULL CHECK (percent >= 0 AND percent <= 100),
    fallback boolean NOT NULL,
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS llmfiles_flag_history (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    version bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    reason text,
    enabled boolean NOT NULL,
    percent double precision NOT NULL,
    fallback boolean NOT NULL,
    evidence jsonb
);
CREATE TABLE IF NOT EXISTS llmfiles_rollout_state (
    name text PRIMARY KEY,
    state jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS llmfiles_controller_lease (
    name text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    last_slot bigint NOT NULL DEFAULT -1,
    failed_checks integer NOT NULL DEFAULT 0,
    stage_key text NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS llmfiles_controller_checks (
    name text NOT NULL,
    slot bigint NOT NULL,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    decision text NOT NULL,
    failed_checks integer NOT NULL,
    rolled_back boolean NOT NULL,
    PRIMARY KEY (name, slot)
);
"""
# Two hosts creating the tables at once race on the catalog; a transaction-scoped advisory lock orders them.
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(4597, 1)"


def is_postgres_url(value: str) -> bool:
    """Whether `value` names a PostgreSQL database rather than a file."""
    return value.startswith(SCHEMES)


class PgWorker:
    """One asyncpg connection on a private event loop; `call` runs a coroutine on it and waits.

    The connection opens on first use and again after it broke, so a database that comes back is used
    again without a restart. Calls are serialised (one connection, one statement at a time).

    Args:
        dsn: ``postgresql://...``; its password never appears in an error or a log line.
        timeout_s: the longest a call (connecting included) may take before `SharedStateError`.
    """

    def __init__(self, dsn: str, *, timeout_s: float = 3.0) -> None:
        if not is_postgres_url(dsn):
            raise ConfigError(f"dsn={redact_dsn(dsn)!r} must start with postgresql:// or postgres://")
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s={timeout_s!r} must be > 0 seconds")
        self.dsn = dsn
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmfiles-pg", daemon=True)
        self._thread.start()
        self._conn: asyncpg.Connection[Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False

    @property
    def where(self) -> str:
        """The server, password masked: for messages."""
        return redact_dsn(self.dsn)

    def call(self, work: Callable[[asyncpg.Connection[Any]], Awaitable[T]], *, what: str) -> T:
        """Run ``work(connection)`` on the worker's loop and return its result.

        Raises:
            SharedStateError: the database could not be reached, refused, or took longer than `timeout_s`;
                `what` says which operation, for the message.
        """
        future = self.submit(self._with_connection(work))
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout as exc:
            future.cancel()
            raise SharedStateError(f"{what} on {self.where} took more than {self.timeout_s} s") from exc
        except SharedStateError:
            raise
        except (OSError, TimeoutError) as exc:
            raise SharedStateError(f"{what}: cannot reach {self.where} ({exc})") from exc
        except Exception as exc:
            if _is_driver_error(exc):
                raise SharedStateError(f"{what} on {self.where} failed: {exc}") from exc
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule `coro` on the worker's loop (for background tasks such as a listener)."""
        if self._closed:
            coro.close()
            raise SharedStateError(f"the connection to {self.where} is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def connect(self) -> asyncpg.Connection[Any]:
        """A new connection with the schema in place (the listener keeps one of its own)."""
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(self.dsn), timeout=self.timeout_s)
        try:
            async with conn.transaction():
                await conn.execute(_SCHEMA_LOCK)
                await conn.execute(SCHEMA)
        except BaseException:
            await conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close the connection and stop the thread; later calls raise `SharedStateError`."""
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            if self._conn is not None and not self._conn.is_closed():
                await self._conn.close(timeout=1.0)

        # Closing a broken connection has nothing left to report.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=2.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def _with_connection(self, work: Callable[[asyncpg.Connection[Any]], Awaitable[T]]) -> T:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await self.connect()
            try:
                return await work(self._conn)
            except BaseException:
                # A statement that failed mid-way may leave the connection unusable; start afresh next time.
                conn, self._conn = self._conn, None
                if conn is not None and not conn.is_closed():
                    conn.terminate()
                raise


def _is_driver_error(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError)
