"""`llmfiles upload` and `llmfiles download`: the transfer client from a shell, with progress bars.

The key and base URL come from the provider's environment variables (`ProviderSpec.api_key_env`,
`ProviderSpec.base_url_env`), never from a flag, so they stay out of shell history and process lists.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from llmfiles._errors import ConfigError, LLMFilesError
from llmfiles.providers import ProviderSpec, provider_by_name
from llmfiles.transfer import AsyncFilesClient, UploadResult
from llmfiles.transfer import Progress as ProgressCallback

_USAGE_ERROR = 2
"""Exit status for a usage or configuration problem (click's convention); 1 means a transfer failed."""

# Rich only on stderr (bars, errors); stdout carries plain tab-separated lines for scripts.
_err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the `upload` and `download` commands to `app`."""
    app.command("upload")(upload)
    app.command("download")(download)


def _client(provider: str) -> AsyncFilesClient:
    try:
        spec: ProviderSpec = provider_by_name(provider)
    except ConfigError as exc:
        _fail_usage(str(exc))
    api_key = os.environ.get(spec.api_key_env, "")
    if not api_key:
        _fail_usage(f"{spec.api_key_env} is not set; export the {spec.name} API key in it and run again")
    try:
        return AsyncFilesClient(spec, api_key=api_key, base_url=os.environ.get(spec.base_url_env) or None)
    except ConfigError as exc:
        _fail_usage(f"{spec.base_url_env}: {exc}")


def _fail_usage(message: str) -> NoReturn:
    _err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(_USAGE_ERROR)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=False,
    )


def upload(
    files: Annotated[list[Path], typer.Argument(help="Files to upload.", show_default=False)],
    provider: Annotated[str, typer.Option(help="kimi or glm.")] = "kimi",
    purpose: Annotated[str, typer.Option(help="The provider's purpose, e.g. file-extract or batch.")] = (
        "file-extract"
    ),
) -> None:
    """Upload FILES, streaming; print one line per file: file id, SHA-256, name."""
    client = _client(provider)
    results = asyncio.run(_upload(client, files, purpose))
    failed = False
    for path, result in zip(files, results, strict=True):
        if isinstance(result, UploadResult):
            typer.echo(f"{result.file.id}\t{result.sha256}\t{path}")
        else:
            failed = True
            _err.print(f"[red]failed:[/red] {path}: {result}", highlight=False)
    if failed:
        raise typer.Exit(1)


async def _upload(
    client: AsyncFilesClient, files: list[Path], purpose: str
) -> list[UploadResult | LLMFilesError]:
    async with client:
        with _bar() as bars:

            async def one(path: Path) -> UploadResult | LLMFilesError:
                task = bars.add_task(path.name, total=None)
                try:
                    return await client.upload(path, purpose=purpose, progress=_advance(bars, task))
                except LLMFilesError as exc:
                    return exc

            return await asyncio.gather(*(one(path) for path in files))


def download(
    file_id: Annotated[str, typer.Argument(help="The provider's file id.", show_default=False)],
    to: Annotated[Path, typer.Option("--to", help="Destination directory (created if missing).")],
    provider: Annotated[str, typer.Option(help="kimi or glm.")] = "kimi",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file of the same name.")] = False,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256; a mismatch keeps nothing.")] = None,
) -> None:
    """Download FILE_ID into --to; print the path it was saved under."""
    client = _client(provider)
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail_usage(f"--to={str(to)!r} cannot be created ({exc.strerror}); choose another directory")
    try:
        path = asyncio.run(_download(client, file_id, to, overwrite=overwrite, sha256=sha256))
    except ConfigError as exc:
        _fail_usage(str(exc))
    except LLMFilesError as exc:
        _err.print(f"[red]failed:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(str(path))


async def _download(
    client: AsyncFilesClient, file_id: str, to: Path, *, overwrite: bool, sha256: str | None
) -> Path:
    async with client:
        with _bar() as bars:
            task = bars.add_task(file_id, total=None)
            return await client.download(
                file_id, to, overwrite=overwrite, expected_sha256=sha256, progress=_advance(bars, task)
            )


def _advance(bars: Progress, task: TaskID) -> ProgressCallback:
    def report(done: int, total: int | None) -> None:
        bars.update(task, completed=done, total=total)

    return report
