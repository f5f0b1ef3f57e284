"""`open_registry`: pick the backend from a URL, so configuration is one string."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from llmfiles._errors import ConfigError
from llmfiles.registry import _postgres
from llmfiles.registry._postgres import PostgresRegistry, redact_dsn
from llmfiles.registry._protocol import UploadRegistry
from llmfiles.registry._sql import Clock
from llmfiles.registry._sqlite import SQLiteRegistry

_EXAMPLES = (
    "sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory: or postgresql://user@host/db"
)


def open_registry(url: str, *, clock: Clock = time.time) -> UploadRegistry:
    """The registry `url` names, ready to open with ``await`` or ``async with``.

    ``sqlite:///path`` (three slashes and a relative path, four for an absolute one, as SQLAlchemy spells
    it) gives the default `SQLiteRegistry`; ``postgresql://...`` or ``postgres://...`` a `PostgresRegistry`
    for several hosts. Nothing is connected until the registry is opened::

        async with open_registry("sqlite:///var/llmfiles/registry.db") as registry:
            claim = await registry.claim(key, size=size)

    Raises:
        ConfigError: the URL names no known backend or no SQLite path; the message never shows a password.
    """
    shown = redact_dsn(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"url={shown!r} is not a URL: {exc}; use {_EXAMPLES}") from None
    if parts.scheme in _postgres.SCHEMES:
        return PostgresRegistry(url, clock=clock)
    if parts.scheme != "sqlite":
        raise ConfigError(f"url={shown!r} names no registry backend; use {_EXAMPLES}")
    path = parts.path[1:]  # "sqlite:///x" splits to path "/x": the first slash only ends the empty host
    if parts.netloc or parts.query or parts.fragment or not path:
        raise ConfigError(f"url={shown!r} is not a SQLite URL with a path; use {_EXAMPLES}")
    return SQLiteRegistry(path, clock=clock)
