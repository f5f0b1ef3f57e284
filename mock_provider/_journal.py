"""Every provider request and the fault applied to it, plus running totals for ``/_stats``."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# Enough for long load runs; the totals in `Journal.stats` keep counting past it.
MAX_ENTRIES = 200_000


@dataclass(slots=True)
class Entry:
    """One journal line; fields are filled in as the exchange goes on.

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


@dataclass(slots=True)
class Journal:
    """The journal and its totals; `clock` stamps ``started_at`` (wall time, seconds)."""

    clock: Callable[[], float]
    _entries: deque[Entry] = field(default_factory=lambda: deque(maxlen=MAX_ENTRIES))
    _seq: int = 0
    _totals: Counter[str] = field(default_factory=Counter)
    _by_key: dict[str, Counter[str]] = field(default_factory=dict)

    def begin(self, provider: str, operation: str, method: str, path: str) -> Entry:
        self._seq += 1
        return Entry(self._seq, provider, operation, method, path, self.clock())

    def finish(self, entry: Entry) -> None:
        self._entries.append(entry)
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
        return [asdict(e) for e in sorted(self._entries, key=lambda e: e.seq) if e.seq > since]

    def stats(self) -> dict[str, Any]:
        return {**self._totals, **{key: dict(counter) for key, counter in self._by_key.items()}}

    def clear(self) -> None:
        self._entries.clear()
        self._totals.clear()
        self._by_key.clear()
        self._seq = 0
