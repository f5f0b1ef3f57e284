"""The registry's logic, once, over any SQL database that speaks ``INSERT ... ON CONFLICT`` and ``RETURNING``.

Every operation is a handful of single-row conditional statements inside one transaction, so it is atomic
both in SQLite (where ``BEGIN IMMEDIATE`` serialises writers) and in PostgreSQL at READ COMMITTED (where
each ``UPDATE ... WHERE <condition>`` re-checks its condition on the newest row version). Backends supply
only a connection, a transaction and two locks. Statements use ``$n`` placeholders; values are always
bound, never formatted into the text.
"""

from __future__ import annotations

import abc
import math
import secrets
from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, Self

from llmfiles._errors import ClaimLostError, ConfigError, ReferenceCountError, RegistryError
from llmfiles.registry._protocol import DEFAULT_LEASE_S
from llmfiles.registry._records import (
    Claim,
    ClaimDecision,
    CleanupItem,
    ContentKey,
    RecordState,
    UploadRecord,
    Usage,
)
from llmfiles.registry._schema import MIGRATIONS

Clock = Callable[[], float]
Row = Sequence[Any]

# Three conditional statements can each miss when other workers change the row in between (PostgreSQL);
# a few rounds always settle it, so running out means something else is wrong.
_CLAIM_ROUNDS = 8

_SCHEMA_TABLE = "CREATE TABLE IF NOT EXISTS llmfiles_registry_schema (version INTEGER NOT NULL)"
_SCHEMA_VERSION = "SELECT MAX(version) FROM llmfiles_registry_schema"
_SCHEMA_RECORD = "INSERT INTO llmfiles_registry_schema (version) VALUES ($1)"

# Every statement is spelt out in full (no text assembled at run time): each reads as it runs, and values
# only ever travel as bound parameters. Statements returning a record list its columns in `_record` order.
_GET = (
    "SELECT provider, purpose, sha256, size, state, file_id, refcount, created_at, last_used_at, lease_until"
    " FROM llmfiles_uploads WHERE provider = $1 AND purpose = $2 AND sha256 = $3"
)
_INSERT_PENDING = (
    "INSERT INTO llmfiles_uploads (provider, purpose, sha256, size, state, file_id, refcount, created_at,"
    " last_used_at, claim_token, lease_until) VALUES ($1, $2, $3, $4, 'pending', NULL, 0, $5, $5, $6, $7)"
    " ON CONFLICT (provider, purpose, sha256) DO NOTHING"
    " RETURNING provider, purpose, sha256, size, state, file_id, refcount, created_at, last_used_at,"
    " lease_until"
)
_TAKE_REFERENCE = (
    "UPDATE llmfiles_uploads SET refcount = refcount + 1, last_used_at = $4"
    " WHERE provider = $1 AND purpose = $2 AND sha256 = $3 AND state = 'ready'"
    " RETURNING provider, purpose, sha256, size, state, file_id, refcount, created_at, last_used_at,"
    " lease_until"
)
_TAKE_OVER = (
    "UPDATE llmfiles_uploads SET claim_token = $4, lease_until = $6"
    " WHERE provider = $1 AND purpose = $2 AND sha256 = $3 AND state = 'pending' AND lease_until <= $5"
    " RETURNING provider, purpose, sha256, size, state, file_id, refcount, created_at, last_used_at,"
    " lease_until"
)
_COMPLETE = (
    "UPDATE llmfiles_uploads SET state = 'ready', file_id = $4, refcount = 1, claim_token = NULL,"
    " lease_until = NULL, last_used_at = $5"
    " WHERE provider = $1 AND purpose = $2 AND sha256 = $3 AND state = 'pending' AND claim_token = $6"
    " RETURNING provider, purpose, sha256, size, state, file_id, refcount, created_at, last_used_at,"
    " lease_until"
)
_ABANDON = (
    "DELETE FROM llmfiles_uploads"
    " WHERE provider = $1 AND purpose = $2 AND sha256 = $3 AND state = 'pending' AND claim_token = $4"
    " RETURNING sha256"
)
_RELEASE = (
    "UPDATE llmfiles_uploads SET refcount = refcount - 1, last_used_at = $4"
    " WHERE provider = $1 AND purpose = $2 AND sha256 = $3 AND state = 'ready' AND refcount > 0"
    " RETURNING provider, purpose, sha256, size, state, file_id, refcount, created_at, last_used_at,"
    " lease_until"
)
# CAST gives PostgreSQL a type for a parameter that may be NULL (no purpose filter); SQLite accepts it too.
_USAGE = (
    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM llmfiles_uploads"
    " WHERE provider = $1 AND (CAST($2 AS TEXT) IS NULL OR purpose = $2)"
)
_DELETING = (
    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM llmfiles_deletions"
    " WHERE provider = $1 AND (CAST($2 AS TEXT) IS NULL OR purpose = $2)"
)
_CANDIDATES = (
    "SELECT purpose, sha256 FROM llmfiles_uploads"
    " WHERE provider = $1 AND (CAST($2 AS TEXT) IS NULL OR purpose = $2) AND state = 'ready' AND refcount = 0"
    " ORDER BY last_used_at, created_at, purpose, sha256"
)
_EVICT = (
    "DELETE FROM llmfiles_uploads"
    " WHERE provider = $1 AND purpose = $2 AND sha256 = $3 AND state = 'ready' AND refcount = 0"
    " RETURNING file_id, size"
)
_RESERVE = (
    "INSERT INTO llmfiles_deletions (provider, purpose, sha256, file_id, size, lease_until)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
_RESERVE_AGAIN = (
    "UPDATE llmfiles_deletions SET lease_until = $4"
    " WHERE provider = $1 AND (CAST($2 AS TEXT) IS NULL OR purpose = $2) AND lease_until <= $3"
    " RETURNING purpose, sha256, file_id, size, lease_until"
)
_FORGET = "DELETE FROM llmfiles_deletions WHERE provider = $1 AND file_id = $2 RETURNING file_id"
_DISCARD = (
    "DELETE FROM llmfiles_uploads"
    " WHERE provider = $1 AND purpose = $2 AND sha256 = $3 AND state = 'ready' AND file_id = $4"
    " RETURNING file_id"
)


class Tx(Protocol):
    """One open transaction; statements use ``$n`` placeholders."""

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...

    async def execute(self, sql: str, *args: object) -> None: ...


def _record(row: Row) -> UploadRecord:
    provider, purpose, sha256, size, state, file_id, refcount, created_at, last_used_at, lease_until = row
    return UploadRecord(
        key=ContentKey(provider, purpose, sha256),
        size=int(size),
        state=RecordState(state),
        file_id=file_id,
        refcount=int(refcount),
        created_at=float(created_at),
        last_used_at=float(last_used_at),
        lease_until=None if lease_until is None else float(lease_until),
    )


def _require_count(name: str, value: int | None) -> None:
    # bool is an int subclass; True as a quota is a caller's slip, not one file.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{name}={value!r} must be an int")
    if value is not None and value < 0:
        raise ConfigError(f"{name}={value!r} is negative; pass 0 or more")


def _require_lease(lease_s: float) -> None:
    if not (isinstance(lease_s, int | float) and math.isfinite(lease_s) and lease_s > 0):
        raise ConfigError(f"lease_s={lease_s!r} must be a positive number of seconds, e.g. 600")


def _describe(key: ContentKey) -> str:
    return f"provider={key.provider!r} purpose={key.purpose!r} sha256={key.sha256!r}"


class SQLRegistry(abc.ABC):
    """`UploadRegistry` over SQL; a backend subclasses it with a connection and a transaction.

    Args:
        clock: wall-clock seconds (``time.time``); leases and clean-up order follow it, so hosts that
            share a database need synchronised clocks.
    """

    #: Named in messages, e.g. ``"SQLite database '/var/lib/x.db'"``.
    backend: str = "database"

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._open = False

    # -- the backend's part ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def _connect(self) -> None:
        """Open connections; map connection failures to `RegistryError`."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Close connections."""

    @abc.abstractmethod
    def _transaction(self, *, write: bool) -> AbstractAsyncContextManager[Tx]:
        """A transaction that commits on success, rolls back on error and maps database errors.

        Read-only ones (`write` False) see one consistent snapshot and never wait for writers.
        """

    @abc.abstractmethod
    async def _lock_schema(self, tx: Tx) -> None:
        """Serialise migrations between processes (a no-op where the transaction already does)."""

    @abc.abstractmethod
    async def _lock_provider(self, tx: Tx, provider: str) -> None:
        """Serialise clean-ups of one provider, so two cleaners never both evict for the same excess."""

    # -- life cycle --------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and create or migrate the schema; opening an open registry does nothing.

        Raises:
            RegistryError: the database is unreachable or its schema is newer than this llmfiles knows.
        """
        if self._open:
            return
        await self._connect()
        try:
            await self._migrate()
        except BaseException:
            await self._disconnect()
            raise
        self._open = True

    async def close(self) -> None:
        """Release connections; closing a closed registry does nothing."""
        if self._open:
            self._open = False
            await self._disconnect()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __await__(self) -> Generator[Any, None, Self]:
        """``registry = await SQLiteRegistry(...)`` opens it, like ``await aiosqlite.connect(...)``."""
        return self.__aenter__().__await__()

    async def _migrate(self) -> None:
        async with self._transaction(write=True) as tx:
            await self._lock_schema(tx)
            await tx.execute(_SCHEMA_TABLE)
            row = await tx.fetchrow(_SCHEMA_VERSION)
            current = int(row[0]) if row is not None and row[0] is not None else 0
            if current > len(MIGRATIONS):
                raise RegistryError(
                    f"{self.backend} has registry schema version={current}, newer than this llmfiles knows "
                    f"({len(MIGRATIONS)}); upgrade llmfiles on this host"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[version - 1]:
                    await tx.execute(statement)
                await tx.execute(_SCHEMA_RECORD, version)

    def _tx(self, *, write: bool = True) -> AbstractAsyncContextManager[Tx]:
        if not self._open:
            raise RegistryError(
                f"{self.backend} is not open; use `async with registry:` or `await registry.open()` first"
            )
        return self._transaction(write=write)

    def _now(self) -> float:
        return float(self._clock())

    # -- operations --------------------------------------------------------------------------------------

    async def get(self, key: ContentKey) -> UploadRecord | None:
        """The record for `key`, pending or ready, or None."""
        async with self._tx(write=False) as tx:
            row = await tx.fetchrow(_GET, key.provider, key.purpose, key.sha256)
        return None if row is None else _record(row)

    async def claim(self, key: ContentKey, *, size: int, lease_s: float = DEFAULT_LEASE_S) -> Claim:
        """Decide atomically who uploads `key`.

        Exactly one concurrent caller gets ``UPLOAD`` (with a token and a lease of `lease_s`); the others get
        ``WAIT`` until the uploader completes (then ``REUSE``, with a reference taken for them), abandons or
        lets its lease run out (then the next caller gets ``UPLOAD``).

        Raises:
            ConfigError: `size` is negative or differs from the size recorded for this digest.
            RegistryError: the database failed.
        """
        _require_count("size", size)
        _require_lease(lease_s)
        args = (key.provider, key.purpose, key.sha256)
        async with self._tx() as tx:
            for _ in range(_CLAIM_ROUNDS):
                now = self._now()
                token = secrets.token_hex(16)
                row = await tx.fetchrow(_INSERT_PENDING, *args, size, now, token, now + lease_s)
                if row is not None:
                    return Claim(ClaimDecision.UPLOAD, _record(row), token)
                row = await tx.fetchrow(_GET, *args)
                if row is not None and (recorded := _record(row)).size != size:
                    raise ConfigError(
                        f"size={size!r} differs from size={recorded.size!r} recorded for {_describe(key)}; "
                        "pass the size of the bytes the digest was computed over"
                    )
                row = await tx.fetchrow(_TAKE_REFERENCE, *args, now)
                if row is not None:
                    return Claim(ClaimDecision.REUSE, _record(row))
                row = await tx.fetchrow(_TAKE_OVER, *args, token, now, now + lease_s)
                if row is not None:
                    return Claim(ClaimDecision.UPLOAD, _record(row), token)
                row = await tx.fetchrow(_GET, *args)
                if row is not None and (recorded := _record(row)).state is RecordState.PENDING:
                    return Claim(ClaimDecision.WAIT, recorded)
        raise RegistryError(
            f"{self.backend}: the claim on {_describe(key)} kept changing under other workers; claim again"
        )

    async def complete(self, claim: Claim, file_id: str) -> UploadRecord:
        """Record the provider's `file_id` for a claim answered ``UPLOAD``; the caller then holds a reference.

        A claim whose lease ran out still completes as long as nobody took it over.

        Raises:
            ConfigError: the claim was not answered ``UPLOAD`` or `file_id` is empty.
            ClaimLostError: another worker took the claim over; `file_id` is not recorded.
        """
        token = _upload_token(claim, "complete")
        if not file_id:
            raise ConfigError(f"file_id={file_id!r} is empty; pass the id the provider returned")
        key = claim.record.key
        async with self._tx() as tx:
            row = await tx.fetchrow(
                _COMPLETE, key.provider, key.purpose, key.sha256, file_id, self._now(), token
            )
        if row is None:
            raise ClaimLostError(
                f"the claim on {_describe(key)} ran out its lease and was taken over or abandoned; "
                f"file_id={file_id!r} is not recorded: delete it at the provider, and raise lease_s",
                file_id=file_id,
            )
        return _record(row)

    async def abandon(self, claim: Claim) -> bool:
        """Give up a claim answered ``UPLOAD`` so the next claim uploads at once; False if already lost."""
        token = _upload_token(claim, "abandon")
        key = claim.record.key
        async with self._tx() as tx:
            row = await tx.fetchrow(_ABANDON, key.provider, key.purpose, key.sha256, token)
        return row is not None

    async def acquire(self, key: ContentKey) -> UploadRecord | None:
        """Take a reference to a ready file; None (and no reference) when it is absent or still pending."""
        async with self._tx() as tx:
            row = await tx.fetchrow(_TAKE_REFERENCE, key.provider, key.purpose, key.sha256, self._now())
        return None if row is None else _record(row)

    async def release(self, key: ContentKey) -> UploadRecord:
        """Give a reference back; the file becomes a clean-up candidate when none are left.

        Raises:
            ReferenceCountError: no reference is held (the count is 0, the file is pending or unknown);
                nothing changed.
        """
        args = (key.provider, key.purpose, key.sha256)
        async with self._tx() as tx:
            row = await tx.fetchrow(_RELEASE, *args, self._now())
            if row is not None:
                return _record(row)
            row = await tx.fetchrow(_GET, *args)
        current = None if row is None else _record(row)
        if current is None:
            why = "no upload is recorded"
        elif current.state is RecordState.PENDING:
            why = "the upload is still pending"
        else:
            why = "refcount=0 already"
        raise ReferenceCountError(
            f"release of {_describe(key)} refused: {why}; release only references that claim (REUSE), "
            "complete or acquire gave you"
        )

    async def reserve_cleanup(
        self,
        provider: str,
        *,
        max_files: int | None = None,
        max_bytes: int | None = None,
        purpose: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> list[CleanupItem]:
        """Reserve unreferenced ready files, least recently used first, until `provider` fits the quota.

        Reserved files leave the upload table at once (a new claim of the same content uploads afresh
        rather than reuse a file about to vanish) and wait in the deletion table until ``mark_deleted``.
        Reservations whose lease ran out (a cleaner died) come first in the answer. If referenced files
        alone exceed the quota, every unreferenced one is reserved and the quota stays exceeded.

        Args:
            provider: the provider account to clean up.
            max_files: how many files (pending and ready) may stay; None for no limit.
            max_bytes: how many bytes may stay; None for no limit.
            purpose: count and evict only this purpose (GLM limits each purpose); None for all.
            lease_s: how long the caller has to delete the files before another cleaner may retry them.
        """
        _require_count("max_files", max_files)
        _require_count("max_bytes", max_bytes)
        _require_lease(lease_s)
        async with self._tx() as tx:
            await self._lock_provider(tx, provider)
            now = self._now()
            lease_until = now + lease_s
            items = [
                CleanupItem(ContentKey(provider, row[0], row[1]), row[2], int(row[3]), float(row[4]))
                for row in await tx.fetch(_RESERVE_AGAIN, provider, purpose, now, lease_until)
            ]
            usage = await tx.fetchrow(_USAGE, provider, purpose)
            files, total = (0, 0) if usage is None else (int(usage[0]), int(usage[1]))

            def over() -> bool:
                return (max_files is not None and files > max_files) or (
                    max_bytes is not None and total > max_bytes
                )

            if not over():
                return items
            for candidate_purpose, sha256 in await tx.fetch(_CANDIDATES, provider, purpose):
                if not over():
                    break
                evicted = await tx.fetchrow(_EVICT, provider, candidate_purpose, sha256)
                if evicted is None:  # a reference was taken since the candidates were listed
                    continue
                file_id, size = evicted[0], int(evicted[1])
                await tx.execute(_RESERVE, provider, candidate_purpose, sha256, file_id, size, lease_until)
                items.append(
                    CleanupItem(ContentKey(provider, candidate_purpose, sha256), file_id, size, lease_until)
                )
                files, total = files - 1, total - size
        return items

    async def mark_deleted(self, item: CleanupItem) -> bool:
        """Forget a reserved file once the provider deleted it (or answered 404); False if already gone."""
        async with self._tx() as tx:
            row = await tx.fetchrow(_FORGET, item.key.provider, item.file_id)
        return row is not None

    async def discard(self, key: ContentKey, file_id: str) -> bool:
        """Forget a ready file the provider no longer has (it answered 404 when the file was used).

        The row goes whatever its reference count (those references point at nothing now), so the next
        claim uploads afresh. Only `file_id` is forgotten: if the content was uploaded again meanwhile, the
        new file stays and this returns False.
        """
        async with self._tx() as tx:
            row = await tx.fetchrow(_DISCARD, key.provider, key.purpose, key.sha256, file_id)
        return row is not None

    async def usage(self, provider: str, *, purpose: str | None = None) -> Usage:
        """Files and bytes `provider` holds according to the registry (optionally one purpose only)."""
        async with self._tx(write=False) as tx:
            live = await tx.fetchrow(_USAGE, provider, purpose)
            deleting = await tx.fetchrow(_DELETING, provider, purpose)
        # Aggregates without GROUP BY always return exactly one row.
        assert live is not None
        assert deleting is not None
        return Usage(int(live[0]), int(live[1]), int(deleting[0]), int(deleting[1]))


def _upload_token(claim: Claim, operation: str) -> str:
    if claim.decision is not ClaimDecision.UPLOAD or claim.token is None:
        raise ConfigError(
            f"claim.decision={claim.decision.value!r}: only a claim answered 'upload' can {operation}"
        )
    return claim.token
