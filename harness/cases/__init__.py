"""Each claim's measurement, one module a topic.

CASES lists them in the order they run: cheap, mock-free cases first so a broken mock still leaves the
pure verdicts, memory last among the transfers because its 1 GB files dominate the run's time.

`CASES` is imported on first use (from `harness.cases._all`), so that a process that needs one module of
this package (a memory probe is a fresh interpreter per figure) does not import every case's libraries:
that took 2.6 s of each probe's 3.2 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cases._all import CASES

__all__ = ["CASES"]


def __getattr__(name: str) -> object:
    if name == "CASES":
        from harness.cases._all import CASES

        return CASES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
