"""The `llmfiles` command: transfers (`upload`, `download`) and the `rollout` sub-commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Move files to and from LLM providers' Files APIs.")


def main() -> None:
    """Entry point of the `llmfiles` console script."""
    app()
