"""The `llmfiles` command: transfers (`upload`, `download`) and the `rollout` sub-commands."""

from __future__ import annotations

import typer

from llmfiles.cli._control import control
from llmfiles.cli._rollout import rollout_app
from llmfiles.cli._transfer import register as register_transfer

app = typer.Typer(no_args_is_help=True, help="Move files to and from LLM providers' Files APIs.")
rollout_app.command("control")(control)
app.add_typer(rollout_app, name="rollout")
register_transfer(app)


def main() -> None:
    """Entry point of the `llmfiles` console script."""
    app()
