"""One setting, two engines: a path means the host's file, a ``postgresql://`` URL the fleet's database."""

from __future__ import annotations

from pathlib import Path

from llmfiles.fleet._flags import DEFAULT_FLAG, PostgresFlagSource
from llmfiles.fleet._pg import is_postgres_url
from llmfiles.fleet._state import PostgresStateStore
from llmfiles.rollout import FileFlagSource, FlagSource, StateStore


def open_flag_source(
    where: str | Path, *, name: str = DEFAULT_FLAG, fallback: FlagSource | None = None
) -> FileFlagSource | PostgresFlagSource:
    """A `FileFlagSource` for a path, a `PostgresFlagSource` for a ``postgresql://`` URL."""
    if isinstance(where, str) and is_postgres_url(where):
        return PostgresFlagSource(where, name=name, fallback=fallback)
    return FileFlagSource(where)


def open_state_store(where: str | Path, *, name: str = DEFAULT_FLAG) -> StateStore | PostgresStateStore:
    """A file `StateStore` for a path, a `PostgresStateStore` for a ``postgresql://`` URL."""
    if isinstance(where, str) and is_postgres_url(where):
        return PostgresStateStore(where, name=name)
    return StateStore(where)
