"""`PostgresStateStore`: the controller's `RolloutState` in one PostgreSQL row, the fleet's state store.

The `RolloutStateStore` contract, as the file store keeps it: `load` returns the initial state when
nothing was saved, `save` replaces the row in one statement (every controller and the CLI on any host see
one state), and `set_aside` renames an unreadable row to ``<name>.corrupt-<UTC time>`` so the kill switch
can write afresh while the evidence stays.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from llmfiles._errors import ConfigError
from llmfiles.fleet._flags import DEFAULT_FLAG
from llmfiles.fleet._pg import PgWorker
from llmfiles.rollout import RolloutState

if TYPE_CHECKING:
    import asyncpg

_SAVE = """
INSERT INTO llmfiles_rollout_state (name, state, updated_at) VALUES ($1, $2::jsonb, now())
ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
"""


class PostgresStateStore:
    """`RolloutState` in the row `name` of ``llmfiles_rollout_state``.

    Args:
        dsn: ``postgresql://...`` (the table is created on first use).
        name: the rollout's row, normally the flag's name.
        timeout_s: the longest a load or save may take before `SharedStateError`.
    """

    def __init__(self, dsn: str, *, name: str = DEFAULT_FLAG, timeout_s: float = 3.0) -> None:
        self.name = name
        self._worker = PgWorker(dsn, timeout_s=timeout_s)

    def load(self) -> RolloutState:
        """The saved state, or the initial one when none was saved.

        Raises:
            SharedStateError: the database could not be reached.
            ConfigError: the row does not hold a rollout state.
        """

        async def work(conn: asyncpg.Connection[Any]) -> str | None:
            value = await conn.fetchval(
                "SELECT state::text FROM llmfiles_rollout_state WHERE name = $1", self.name
            )
            return None if value is None else str(value)

        raw = self._worker.call(work, what=f"load rollout state {self.name!r}")
        if raw is None:
            return RolloutState()
        origin = f"rollout state {self.name!r} in {self._worker.where}"
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ConfigError(f"{origin} must hold a JSON object")
        return RolloutState.from_dict(data, origin=origin)

    def save(self, state: RolloutState) -> None:
        """Replace the row with `state` (one statement: readers see the old or the new, never half)."""
        text = json.dumps(state.to_dict())

        async def work(conn: asyncpg.Connection[Any]) -> None:
            await conn.execute(_SAVE, self.name, text)

        self._worker.call(work, what=f"save rollout state {self.name!r}")

    def set_aside(self) -> str | None:
        """Rename the row out of the way (kept, never deleted); its new name, None when there was none."""
        aside = f"{self.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"

        async def work(conn: asyncpg.Connection[Any]) -> str | None:
            sql = "UPDATE llmfiles_rollout_state SET name = $2 WHERE name = $1 RETURNING name"
            value = await conn.fetchval(sql, self.name, aside)
            return None if value is None else str(value)

        moved = self._worker.call(work, what=f"set rollout state {self.name!r} aside")
        return None if moved is None else f"{self._worker.where} row {moved!r}"

    def close(self) -> None:
        """Close the connection."""
        self._worker.close()
