"""`PostgresFlagSource`: the rollout's flags in one PostgreSQL row that every instance follows.

A write is one transaction: the row, a history entry (who, when, why, the verdict as evidence) and a
``NOTIFY``, so a listener never sees a change without its history and the notification leaves only on
commit. Each instance keeps the row in memory: `snapshot` costs no I/O, which matters because the
dispatcher asks on every upload. A background task keeps the copy fresh three ways:

- ``LISTEN``: a change reaches every instance in milliseconds;
- polling every `poll_s` (1 s by default) on the same connection, for a notification that never came
  (a pooler in between, a write made by hand with plain SQL);
- reconnecting every `poll_s` while the database is down, reading the row at once when it is back.

While the database cannot be reached the last flags stay in force, and when a `fallback` source is
given (a flag file on the host) the more cautious of the two rules: a rollback written to the file while
PostgreSQL is down still takes every instance on that host to the legacy arm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import structlog

from llmfiles._errors import ConfigError, SharedStateError
from llmfiles.fleet._pg import PgWorker
from llmfiles.rollout import FlagSource, FlagState

if TYPE_CHECKING:
    import asyncpg

_log = structlog.get_logger("llmfiles.fleet")

CHANNEL = "llmfiles_flags"
DEFAULT_FLAG = "llmfiles-async-upload"

_UPSERT = """
INSERT INTO llmfiles_flags (name, enabled, percent, fallback, version, updated_at)
VALUES ($1, $2, $3, $4, 1, now())
ON CONFLICT (name) DO UPDATE
   SET enabled = EXCLUDED.enabled, percent = EXCLUDED.percent, fallback = EXCLUDED.fallback,
       version = llmfiles_flags.version + 1, updated_at = now()
RETURNING version
"""
_HISTORY = """
INSERT INTO llmfiles_flag_history (name, version, actor, reason, enabled, percent, fallback, evidence)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
"""
_READ = "SELECT enabled, percent, fallback, version FROM llmfiles_flags WHERE name = $1"


def evidence_json(evidence: Mapping[str, Any]) -> str:
    """`evidence` as JSON PostgreSQL accepts, whatever it holds: a kill switch must never fail on its
    paperwork. Non-finite numbers (a ratio over an empty arm) become strings, since ``jsonb`` has no
    NaN; anything else JSON cannot say becomes its ``str``."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, Mapping):
            return {str(key): clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(evidence), default=str, allow_nan=False)


@dataclass(frozen=True, slots=True)
class FlagChange:
    """One entry of the flag history: the state written, by whom, when and why, with its evidence."""

    version: int
    at: float
    actor: str
    reason: str | None
    state: FlagState
    evidence: Mapping[str, Any] | None


class PostgresFlagSource:
    """Flags shared by a fleet through PostgreSQL; a `WritableFlagSource`.

    Args:
        dsn: ``postgresql://...`` (the tables are created on first use).
        name: the flag's row; several rollouts can share a database.
        poll_s: how often the row is read without a notification, and how often a lost connection is
            retried: the bound on how stale an instance can be when notifications do not arrive.
        fallback: a host-local source (a flag file) whose more cautious state wins while the database
            is unreachable.
        default: the flags before the row exists or was ever read.
        timeout_s: the longest a write or a first read may take.
        wait_s: how long the constructor waits for the first read before it serves `default`.
        actor: who this source writes as in the history (a controller's id, an operator's name),
            unless a write names another.
    """

    def __init__(
        self,
        dsn: str,
        *,
        name: str = DEFAULT_FLAG,
        poll_s: float = 1.0,
        fallback: FlagSource | None = None,
        default: FlagState | None = None,
        timeout_s: float = 3.0,
        wait_s: float = 3.0,
        actor: str = "llmfiles",
    ) -> None:
        if not (math.isfinite(poll_s) and poll_s > 0):
            raise ConfigError(f"poll_s={poll_s!r} must be a finite number of seconds > 0")
        self.name = name
        self.poll_s = poll_s
        self.actor = actor
        self._fallback = fallback
        self._worker = PgWorker(dsn, timeout_s=timeout_s)
        self._lock = threading.Lock()
        self._state = default if default is not None else FlagState()
        self._version = -1
        self._connected = False
        self._ready = threading.Event()
        self._closing = False
        self._task = self._worker.submit(self._follow())
        self._ready.wait(timeout=wait_s)

    @property
    def connected(self) -> bool:
        """Whether the listener holds a live connection now."""
        return self._connected

    @property
    def version(self) -> int:
        """The row version this instance follows (-1 before the first read)."""
        return self._version

    def snapshot(self) -> FlagState:
        """The flags in force: the row as last read; while disconnected, capped by the fallback's."""
        with self._lock:
            state, connected = self._state, self._connected
        if connected or self._fallback is None:
            return state
        local = self._fallback.snapshot()
        if not local.enabled or local.effective_percent < state.effective_percent:
            return local
        return state

    def write(
        self,
        state: FlagState,
        *,
        actor: str | None = None,
        reason: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> None:
        """Make `state` the fleet's flags in one transaction with its history entry (`version` tells which).

        Raises:
            SharedStateError: the database could not be reached or refused; nothing was written.
        """

        async def work(conn: asyncpg.Connection[Any]) -> int:
            async with conn.transaction():
                return await self._store(conn, state, actor or self.actor, reason, evidence)

        version = self._worker.call(work, what=f"write flag {self.name!r}")
        self._adopt(state, version)
        _log.info(
            "fleet_flags_written",
            flag=self.name,
            version=version,
            actor=actor or self.actor,
            reason=reason,
            **state.to_dict(),
        )

    def roll_back(
        self,
        *,
        reason: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> str | None:
        """Percentage 0 for the whole fleet, whatever the row holds now (the kill switch), in one
        transaction with its history entry; the other flags are kept. Nothing is ever set aside (a row
        cannot be unreadable), so it returns None.

        Raises:
            SharedStateError: the database could not be reached; the caller must say so loudly (and
                write its host-local fallback, if it has one).
        """

        async def work(conn: asyncpg.Connection[Any]) -> tuple[FlagState, int]:
            async with conn.transaction():
                row = await conn.fetchrow(_READ + " FOR UPDATE", self.name)
                kept = FlagState() if row is None else FlagState(enabled=bool(row[0]), fallback=bool(row[2]))
                off = replace(kept, percent=0.0)
                return off, await self._store(conn, off, actor or self.actor, reason, evidence)

        state, version = self._worker.call(work, what=f"roll back flag {self.name!r}")
        self._adopt(state, version)
        _log.warning(
            "fleet_flags_rolled_back",
            flag=self.name,
            actor=actor or self.actor,
            reason=reason,
            **state.to_dict(),
        )
        return None

    def history(self, *, limit: int = 50) -> list[FlagChange]:
        """The last `limit` changes, newest first."""

        async def work(conn: asyncpg.Connection[Any]) -> list[FlagChange]:
            rows = await conn.fetch(
                "SELECT version, extract(epoch FROM at), actor, reason, enabled, percent, fallback, evidence "
                "FROM llmfiles_flag_history WHERE name = $1 ORDER BY id DESC LIMIT $2",
                self.name,
                limit,
            )
            return [
                FlagChange(
                    version=int(row[0]),
                    at=float(row[1]),
                    actor=str(row[2]),
                    reason=row[3],
                    state=FlagState(enabled=bool(row[4]), percent=float(row[5]), fallback=bool(row[6])),
                    evidence=None if row[7] is None else json.loads(row[7]),
                )
                for row in rows
            ]

        return self._worker.call(work, what=f"read the history of flag {self.name!r}")

    def close(self) -> None:
        """Stop following the row and close the connections."""
        self._closing = True
        self._worker.close()

    def __enter__(self) -> PostgresFlagSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def _store(
        self,
        conn: asyncpg.Connection[Any],
        state: FlagState,
        actor: str,
        reason: str | None,
        evidence: Mapping[str, Any] | None,
    ) -> int:
        """Row, history entry and notification, inside the caller's transaction; the new version."""
        row = (self.name, state.enabled, float(state.percent), state.fallback)
        version = int(await conn.fetchval(_UPSERT, *row))
        await conn.execute(
            _HISTORY,
            *row[:1],
            version,
            actor,
            reason,
            *row[1:],
            None if evidence is None else evidence_json(evidence),
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{self.name}:{version}")
        return version

    def _adopt(self, state: FlagState, version: int) -> None:
        with self._lock:
            if version >= self._version:
                self._state, self._version = state, version

    async def _follow(self) -> None:
        """Listen, poll and reconnect until closed (see the module docstring)."""
        changed = asyncio.Event()
        while not self._closing:
            conn: asyncpg.Connection[Any] | None = None
            try:
                conn = await self._worker.connect()
                await conn.add_listener(CHANNEL, lambda *_: changed.set())
                await self._read(conn)
                self._set_connected(True)
                while not self._closing and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), timeout=self.poll_s)
                    changed.clear()
                    await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected or not self._ready.is_set():
                    _log.warning(
                        "fleet_flags_unreachable_keeping_last",
                        flag=self.name,
                        server=self._worker.where,
                        error=str(SharedStateError(str(exc))),
                        fallback=self._fallback is not None,
                    )
                self._set_connected(False)
                self._ready.set()
                await asyncio.sleep(self.poll_s)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()

    async def _read(self, conn: asyncpg.Connection[Any]) -> None:
        row = await asyncio.wait_for(conn.fetchrow(_READ, self.name), timeout=self._worker.timeout_s)
        if row is not None:
            state = FlagState(enabled=bool(row[0]), percent=float(row[1]), fallback=bool(row[2]))
            self._adopt(state, int(row[3]))
        self._ready.set()

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected
