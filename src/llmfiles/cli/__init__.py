"""The `llmfiles` command: transfers (`upload`, `download`) and the `rollout` sub-commands."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from llmfiles.cli._control import control
from llmfiles.cli._rollout import rollout_app
from llmfiles.cli._transfer import EXIT_CODES
from llmfiles.cli._transfer import register as register_transfer

app = typer.Typer(no_args_is_help=True, epilog=f"upload, download: {EXIT_CODES}")
rollout_app.command("control")(control)
app.add_typer(rollout_app, name="rollout")
register_transfer(app)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"llmfiles {version('llmfiles')}")
        raise typer.Exit()


@app.callback()
def _main(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Move files to and from LLM providers' Files APIs."""


def main() -> None:
    """Entry point of the `llmfiles` console script."""
    app()
