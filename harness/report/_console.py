"""The terminal side of a bench run: a progress display while cases run, the claims table at the end."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.report._verdict import Outcome, Verdict

__all__ = ["CaseProgress", "claims_table", "progress_display"]

_STYLE = {Outcome.PASS: "bold green", Outcome.FAIL: "bold red", Outcome.UNMEASURED: "bold yellow"}


def claims_table(verdicts: Sequence[Verdict]) -> Table:
    """The claims with what was measured and the verdict, one row each, coloured by outcome.

    The claim's wording stays in report.md; the terminal gets the id so a row fits 80 columns.
    """
    table = Table(title="llmfiles claims", show_lines=False, expand=False)
    for column in ("claim", "priority", "claimed", "measured", "verdict"):
        table.add_column(column, overflow="fold")
    for verdict in verdicts:
        table.add_row(
            verdict.claim.id,
            str(verdict.claim.priority),
            verdict.claim.claimed,
            verdict.measured,
            f"[{_STYLE[verdict.outcome]}]{verdict.outcome}[/]",
        )
    return table


class CaseProgress:
    """Reports bench cases to a rich `Progress`: one overall bar and the case now running."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=total)

    def started(self, name: str) -> None:
        self._progress.update(self._task, description=f"measuring [bold]{name}[/]")

    def finished(self, name: str, ok: bool) -> None:
        mark = "[green]done[/]" if ok else "[red]error[/]"
        self._progress.console.log(f"{name}: {mark}")
        self._progress.advance(self._task)


@contextmanager
def progress_display(console: Console, total: int) -> Iterator[CaseProgress]:
    """A live progress display for `total` cases; plain log lines when the console is not a terminal."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield CaseProgress(progress, total)
