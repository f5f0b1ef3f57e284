"""`ControllerLease`: which one of several controllers acts, and the checks it made, in PostgreSQL.

A lease row names the holder, an epoch and an expiry on the database's clock (hosts' clocks never
compare). Acquiring renews the lease for its holder, or takes it over once it expired, and bumps the
epoch on a takeover. Each check is recorded under its slot (``floor(t / interval)``) with the holder's
epoch as a fence: the row's primary key refuses a second check of the same slot, and a holder whose lease
was taken over (a paused process waking up) finds its epoch stale and records nothing. The failure streak
lives in the lease row, so a new holder continues it: a takeover neither loses nor doubles a check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmfiles._errors import ConfigError
from llmfiles.fleet._flags import DEFAULT_FLAG
from llmfiles.fleet._pg import PgWorker

if TYPE_CHECKING:
    import asyncpg

_ACQUIRE = """
INSERT INTO llmfiles_controller_lease AS lease (name, holder, epoch, expires_at)
VALUES ($1, $2, 1, now() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE
   SET holder = EXCLUDED.holder,
       expires_at = EXCLUDED.expires_at,
       epoch = lease.epoch + CASE WHEN lease.holder = EXCLUDED.holder THEN 0 ELSE 1 END
 WHERE lease.holder = EXCLUDED.holder OR lease.expires_at < now()
RETURNING epoch, last_slot, failed_checks, stage_key, extract(epoch FROM now())
"""
_RECORD_LEASE = """
UPDATE llmfiles_controller_lease SET last_slot = $4, failed_checks = $5, stage_key = $6
 WHERE name = $1 AND holder = $2 AND epoch = $3 AND last_slot < $4 AND expires_at >= now()
"""
_RECORD_CHECK = """
INSERT INTO llmfiles_controller_checks (name, slot, holder, epoch, decision, failed_checks, rolled_back)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """The lease held: its epoch (the fence), the last slot checked, the failure streak and the stage it
    belongs to (`RolloutController.stage_key`), and the database's time."""

    epoch: int
    last_slot: int
    failed_checks: int
    stage_key: str
    now: float


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One recorded check (for reports and tests)."""

    slot: int
    holder: str
    epoch: int
    decision: str
    failed_checks: int
    rolled_back: bool


class ControllerLease:
    """The lease `name` for `holder`, valid `ttl_s` after each renewal.

    Args:
        dsn: ``postgresql://...``.
        holder: this controller's id (unique in the fleet: host and process).
        name: the rollout's lease, normally the flag's name.
        ttl_s: how long a renewal holds; another controller takes over this long after the holder stops
            renewing. Keep it at or under the check interval, so a takeover happens within two intervals.
    """

    def __init__(self, dsn: str, *, holder: str, name: str = DEFAULT_FLAG, ttl_s: float = 5.0) -> None:
        if not (math.isfinite(ttl_s) and ttl_s > 0):
            raise ConfigError(f"ttl_s={ttl_s!r} must be a finite number of seconds > 0")
        if not holder:
            raise ConfigError("holder='' must name this controller")
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self._worker = PgWorker(dsn, timeout_s=min(3.0, ttl_s))

    def acquire(self) -> LeaseGrant | None:
        """Renew or take the lease; None while another holder's lease is still valid.

        Raises:
            SharedStateError: the database could not be reached (then this controller must not act).
        """

        async def work(conn: asyncpg.Connection[Any]) -> LeaseGrant | None:
            row = await conn.fetchrow(_ACQUIRE, self.name, self.holder, float(self.ttl_s))
            if row is None:
                return None
            return LeaseGrant(int(row[0]), int(row[1]), int(row[2]), str(row[3]), float(row[4]))

        return self._worker.call(work, what=f"acquire controller lease {self.name!r}")

    def record(
        self,
        grant: LeaseGrant,
        *,
        slot: int,
        decision: str,
        failed_checks: int,
        rolled_back: bool,
        stage_key: str = "",
    ) -> bool:
        """Record the check of `slot` under `grant`'s epoch; False if the lease was lost or the slot done."""

        async def work(conn: asyncpg.Connection[Any]) -> bool:
            async with conn.transaction():
                status = await conn.execute(
                    _RECORD_LEASE, self.name, self.holder, grant.epoch, slot, failed_checks, stage_key
                )
                if status != "UPDATE 1":
                    return False
                await conn.execute(
                    _RECORD_CHECK,
                    self.name,
                    slot,
                    self.holder,
                    grant.epoch,
                    decision,
                    failed_checks,
                    rolled_back,
                )
            return True

        return self._worker.call(work, what=f"record check {slot} of lease {self.name!r}")

    def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so another controller need not wait for expiry."""

        async def work(conn: asyncpg.Connection[Any]) -> None:
            await conn.execute(
                "UPDATE llmfiles_controller_lease SET expires_at = now() - interval '1 second' "
                "WHERE name = $1 AND holder = $2",
                self.name,
                self.holder,
            )

        self._worker.call(work, what=f"release controller lease {self.name!r}")

    def current(self) -> tuple[str, int] | None:
        """Who holds the lease now and under which epoch (expired or not); None before anyone took it."""

        async def work(conn: asyncpg.Connection[Any]) -> tuple[str, int] | None:
            sql = "SELECT holder, epoch FROM llmfiles_controller_lease WHERE name = $1"
            row = await conn.fetchrow(sql, self.name)
            return None if row is None else (str(row[0]), int(row[1]))

        return self._worker.call(work, what=f"read controller lease {self.name!r}")

    def checks(self) -> list[CheckRecord]:
        """Every recorded check, oldest first."""

        async def work(conn: asyncpg.Connection[Any]) -> list[CheckRecord]:
            rows = await conn.fetch(
                "SELECT slot, holder, epoch, decision, failed_checks, rolled_back "
                "FROM llmfiles_controller_checks WHERE name = $1 ORDER BY slot",
                self.name,
            )
            return [
                CheckRecord(int(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4]), bool(r[5])) for r in rows
            ]

        return self._worker.call(work, what=f"read the checks of lease {self.name!r}")

    def close(self) -> None:
        self._worker.close()
