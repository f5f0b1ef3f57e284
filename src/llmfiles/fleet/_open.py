"""One setting, two engines: a path means the host's file, a ``postgresql://`` URL the fleet's database."""

from __future__ import annotations

from pathlib import Path

from llmfiles.fleet._flags import DEFAULT_FLAG, PostgresFlagSource
from llmfiles.fleet._pg import is_postgres_url
from llmfiles.fleet._state import PostgresStateStore
from llmfiles.rollout import FileFlagSource, FlagSource, FlagState, StateStore


def open_flag_source(
    where: str | Path,
    *,
    name: str = DEFAULT_FLAG,
    fallback: FlagSource | None = None,
    default: FlagState | None = None,
) -> FileFlagSource | PostgresFlagSource:
    """A `FileFlagSource` for a path, a `PostgresFlagSource` for a ``postgresql://`` URL.

    Args:
        where: the flag file or the database.
        name: the flag's row in the database.
        fallback: the database's host-local fallback (see `PostgresFlagSource`).
        default: the flags while the file or the row does not exist.
    """
    if isinstance(where, str) and is_postgres_url(where):
        return PostgresFlagSource(where, name=name, fallback=fallback, default=default)
    return FileFlagSource(where, default=default)


def open_state_store(where: str | Path, *, name: str = DEFAULT_FLAG) -> StateStore | PostgresStateStore:
    """A file `StateStore` for a path, a `PostgresStateStore` for a ``postgresql://`` URL."""
    if isinstance(where, str) and is_postgres_url(where):
        return PostgresStateStore(where, name=name)
    return StateStore(where)
