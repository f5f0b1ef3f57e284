"""``python -m harness bench|load``: the command line of the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Measure llmfiles' claims; load-test it.")


@app.callback()
def _group() -> None:
    """Measure llmfiles' claims (`bench`) or load-test it through the reference service (`load`)."""


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="CI variant: 1 and 50 MB, fewer files (< 3 min).")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory for report.md, report.json, plots.")] = Path(
        "bench-out"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the mock's chaos.")] = 0,
) -> None:
    """Start the mock provider, measure every claim, write the report; exit 1 if a must-claim fails."""
    from harness._bench import run_bench
    from harness._cases import CASES
    from harness._context import BenchConfig

    config = BenchConfig.for_mode(quick=quick, out=out, seed=seed)
    raise typer.Exit(run_bench(config, CASES, Console()))


def main() -> None:
    app()
