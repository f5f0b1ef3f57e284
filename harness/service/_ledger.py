"""`Ledger`: the uploads this service answered as done, and so the only files it shows or deletes."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

__all__ = ["Ledger"]


class Ledger:
    """One JSON line per upload answered as done (file id, SHA-256, size, name), and their file ids.

    The lines are what the nothing-lost check compares with the provider's journal; the ids scope
    ``GET /files``, ``/content`` and ``DELETE``, so the token opens this service's files and no one
    else's in the provider account. Lines left by an earlier run of the same ledger count as this
    service's too. Use it as ``with Ledger(path) as ledger:`` for the app's lifespan.

    Args:
        path: the JSONL file, appended to.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids: set[str] = set()
        self._out: TextIO | None = None

    def __enter__(self) -> Self:
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    self._ids.add(str(json.loads(line)["file_id"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed run names no file
        self._out = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def record(self, done: dict[str, Any]) -> None:
        """Append `done` (with its ``file_id``) before the caller gets it.

        One short write per line, flushed: a killed service still leaves every line it answered. It is
        a single ``write`` to the page cache, cheaper than handing it to a thread.
        """
        assert self._out is not None, "use the ledger inside its with-block"
        self._out.write(json.dumps(done) + "\n")
        self._out.flush()
        self._ids.add(done["file_id"])

    def owns(self, file_id: str) -> bool:
        """Whether this service answered an upload with `file_id`."""
        return file_id in self._ids

    def forget(self, file_id: str) -> None:
        """`file_id` was deleted at the provider: no longer this service's to show."""
        self._ids.discard(file_id)
