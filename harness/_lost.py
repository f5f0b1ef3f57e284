"""The "nothing lost" check: every upload reported done is in the provider's journal with the same bytes.

Used by the bench's concurrency case and after every load run. The journal is the mock's own record of
what it stored (`GET /_journal`), so the check compares two independent witnesses: what the client or
service said it uploaded, and what the provider says it received.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LostReport", "find_lost"]


@dataclass(frozen=True, slots=True)
class LostReport:
    """Outcome of the check.

    Args:
        checked: uploads reported done.
        missing: file ids the journal has no successful upload for.
        mismatched: file ids stored with another SHA-256 than the one reported: ``{id: (reported, stored)}``.
    """

    checked: int
    missing: tuple[str, ...] = ()
    mismatched: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return len(self.missing) + len(self.mismatched)

    @property
    def ok(self) -> bool:
        return self.lost == 0


def find_lost(done: Iterable[tuple[str, str]], journal: Sequence[Mapping[str, Any]]) -> LostReport:
    """Compare `done` (``(file_id, sha256)`` pairs) with the journal's successful uploads.

    A journal upload counts when its status is 2xx, or when it was stored but its response was lost on
    purpose (the ``lost_response`` fault): the client then recovers the id by reconciling with the list.
    """
    stored: dict[str, str] = {}
    for entry in journal:
        if entry.get("operation") != "upload" or not entry.get("file_id"):
            continue
        status = entry.get("status") or 0
        if 200 <= int(status) < 300 or entry.get("fault") == "lost_response":
            stored[str(entry["file_id"])] = str(entry.get("sha256") or "")
    missing: list[str] = []
    mismatched: dict[str, tuple[str, str]] = {}
    checked = 0
    for file_id, sha256 in done:
        checked += 1
        if file_id not in stored:
            missing.append(file_id)
        elif stored[file_id] != sha256:
            mismatched[file_id] = (sha256, stored[file_id])
    return LostReport(checked=checked, missing=tuple(missing), mismatched=mismatched)
