"""Every provider request and the fault applied to it, plus running totals for ``/_stats``.

Entries are appended to a JSON-lines file in the data directory rather than kept in memory: a long load
run makes hundreds of thousands of them (about 500 bytes each in memory), and the harness reads them all
afterwards to prove nothing was lost, so neither a memory cap nor dropping old entries is acceptable.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO


@dataclass(slots=True)
class Entry:
    """One journal line; fields are filled in as the exchange goes on, and it is written when it ends.

    `status` stays None when no response was sent (reset, hang, lost response). `latency_s` is the
    injected delay, so a test can check the distribution without the noise of the rest of the request.
    """

    seq: int
    provider: str
    operation: str
    method: str
    path: str
    started_at: float
    status: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    sha256: str | None = None
    file_id: str | None = None
    fault: str | None = None
    duration_s: float = 0.0
    latency_s: float = 0.0


_FIELDS = tuple(f.name for f in fields(Entry))


@dataclass(slots=True)
class Journal:
    """The journal file and its totals; `clock` stamps ``started_at`` (wall time, seconds)."""

    clock: Callable[[], float]
    path: Path
    _seq: int = 0
    _totals: Counter[str] = field(default_factory=Counter)
    _by_key: dict[str, Counter[str]] = field(default_factory=dict)
    _handle: TextIO | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._handle = self.path.open("w", encoding="utf-8")

    def begin(self, provider: str, operation: str, method: str, path: str) -> Entry:
        self._seq += 1
        return Entry(self._seq, provider, operation, method, path, self.clock())

    def finish(self, entry: Entry) -> None:
        if self._handle is None:
            raise RuntimeError("the journal is closed; the server has stopped")
        # Fields by hand: dataclasses.asdict deep-copies, and cost more than the rest of a small request.
        self._handle.write(json.dumps({name: getattr(entry, name) for name in _FIELDS}) + "\n")
        self._handle.flush()  # on disk before the next request, for anyone reading the file directly
        self._totals["requests"] += 1
        self._totals["bytes_in"] += entry.bytes_in
        self._totals["bytes_out"] += entry.bytes_out
        for key, value in (
            ("by_provider", entry.provider),
            ("by_operation", entry.operation),
            ("by_status", str(entry.status)),
            ("by_fault", str(entry.fault)),
        ):
            self._by_key.setdefault(key, Counter())[value] += 1

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        """Entries with ``seq`` above `since`, in request order (they finish in any order)."""
        with self.path.open(encoding="utf-8") as handle:
            found = [entry for line in handle if (entry := json.loads(line))["seq"] > since]
        return sorted(found, key=lambda entry: int(entry["seq"]))

    def stats(self) -> dict[str, Any]:
        return {**self._totals, **{key: dict(counter) for key, counter in self._by_key.items()}}

    def clear(self) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
        self._totals.clear()
        self._by_key.clear()
        self._seq = 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
