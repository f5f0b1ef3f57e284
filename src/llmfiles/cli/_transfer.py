"""`llmfiles upload` and `llmfiles download`: the transfer client from a shell, with progress bars.

The key and base URL come from the provider's environment variables (`ProviderSpec.api_key_env`,
`ProviderSpec.base_url_env`), never from a flag, so they stay out of shell history and process lists.
Retries, timeouts and concurrency come from ``LLMFILES_MAX_RETRIES``, ``LLMFILES_TIMEOUT_S`` and
``LLMFILES_MAX_CONCURRENCY`` (`load_transfer_settings`), as in a service; the rollout's other settings are
not read, so a flag file that is not there yet never stops a transfer.

Standard output carries results only, as plain tab-separated lines for scripts; progress bars, log lines
(retries, reconciles) and errors go to standard error, so ``llmfiles upload a b | cut -f1`` is exactly the
ids. Every problem is one line on standard error, never a traceback; user text in it (names, ids,
purposes) is printed literally, never read as rich markup.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from typer.core import TyperArgument, TyperCommand

from llmfiles._errors import ConfigError, LLMFilesError
from llmfiles.observe import configure_logging
from llmfiles.providers import PROVIDERS, ProviderSpec
from llmfiles.rollout import load_transfer_settings
from llmfiles.transfer import AsyncFilesClient, UploadResult
from llmfiles.transfer import Progress as ProgressCallback

T = TypeVar("T")

TRANSFER_FAILED = 1
"""Exit status when a transfer failed (the provider refused, the connection broke, a hash differed), or an
upload's outcome is unsettled (`UploadMayExistError`: the message lists the candidate ids)."""
USAGE_ERROR = 2
"""Exit status for a usage or configuration problem found before anything was sent (click's own code)."""
INTERRUPTED_SIGINT = 130
INTERRUPTED_SIGTERM = 143
"""128 + the signal's number, as shells report it; what was in flight was cancelled and cleaned up."""

EXIT_CODES = (
    "Exit codes: 0 all done; 1 a transfer failed (or an upload whose answer was lost may exist: the "
    "error lists the candidate file ids); 2 usage or configuration error (bad option, missing "
    "file, purpose the provider does not accept, bad --sha256, missing key, bad base URL or LLMFILES_* "
    "value), nothing sent; 130/143 interrupted by SIGINT/SIGTERM, nothing partial kept."
)

_ENVIRONMENT = (
    "Environment: "
    + "; ".join(
        f"{spec.name}: {spec.api_key_env} (key), {spec.base_url_env} (base URL)"
        for spec in PROVIDERS.values()
    )
    + "; LLMFILES_MAX_RETRIES (ASYNC_UPLOAD_MAX_RETRIES), LLMFILES_TIMEOUT_S (ASYNC_UPLOAD_TIMEOUT), "
    "LLMFILES_MAX_CONCURRENCY."
)
_EPILOG = f"{_ENVIRONMENT}\n\n{EXIT_CODES}"

_PURPOSES = "; ".join(f"{spec.name}: {', '.join(sorted(spec.purposes))}" for spec in PROVIDERS.values())
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

# Rich only on stderr (bars, errors); stdout carries plain tab-separated lines for scripts.
_err = Console(stderr=True, highlight=False)


class ProviderName(StrEnum):
    """The providers `--provider` accepts: the names in `llmfiles.providers.PROVIDERS`."""

    kimi = "kimi"
    glm = "glm"


ProviderOpt = Annotated[ProviderName, typer.Option(help="The provider whose Files API to use.")]
VerboseOpt = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More log lines on stderr: -v info, -vv debug.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; only errors on stderr.")]


class _Argument(TyperArgument):
    """An argument shown as its metavar (``FILE...``), as click shows it: typer prints ``{files}...`` in
    the usage line and the Python annotation (``<list[Path]>``) in the help table."""

    def display_type_rich(self, ctx: object) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")


class _Command(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.__class__ = _Argument


def register(app: typer.Typer) -> None:
    """Add the `upload` and `download` commands to `app`."""
    app.command("upload", cls=_Command, epilog=_EPILOG)(upload)
    app.command("download", cls=_Command, epilog=_EPILOG)(download)


def upload(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Files to upload.", show_default=False)],
    provider: ProviderOpt = ProviderName.kimi,
    purpose: Annotated[
        str, typer.Option(metavar="PURPOSE", help=f"The provider's purpose ({_PURPOSES}).")
    ] = ("file-extract"),
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Upload FILE..., streaming; print one line per file on stdout: file id, SHA-256, path (tab-separated).

    Nothing is sent when a file is missing or the provider does not take the purpose.
    """
    _configure_logging(verbose, quiet)
    spec = PROVIDERS[provider.value]
    try:
        spec.limit_for(purpose)
    except LLMFilesError as exc:
        _fail_usage(str(exc))
    not_files = [path for path in files if not path.is_file()]
    if not_files:
        shown = ", ".join(_quoted(path) for path in not_files)
        _fail_usage(f"not a readable file: {shown}; check the paths (nothing was uploaded)")
    client = _client(spec)
    results = _run(_upload(client, files, purpose, quiet=quiet))
    failed = False
    for path, result in zip(files, results, strict=True):
        if isinstance(result, UploadResult):
            _echo_line(f"{result.file.id}\t{result.sha256}\t".encode() + _field(path))
        else:
            failed = True
            _print_error(f"upload of {_quoted(path)} to {spec.name} failed: {result}")
    if failed:
        raise typer.Exit(TRANSFER_FAILED)


async def _upload(
    client: AsyncFilesClient, files: list[Path], purpose: str, *, quiet: bool
) -> list[UploadResult | LLMFilesError]:
    async with client:
        with _bar(quiet) as bars:

            async def one(path: Path) -> UploadResult | LLMFilesError:
                task = bars.add_task(_shown(path.name), total=None)
                try:
                    path.name.encode()
                except UnicodeEncodeError:
                    # The multipart body announces the name as UTF-8: a name that is not cannot be sent.
                    return ConfigError(f"its name {_quoted(path.name)} is not valid UTF-8; rename the file")
                try:
                    return await client.upload(path, purpose=purpose, progress=_advance(bars, task))
                except LLMFilesError as exc:
                    return exc

            return await asyncio.gather(*(one(path) for path in files))


def download(
    file_id: Annotated[
        str, typer.Argument(metavar="FILE_ID", help="The provider's file id.", show_default=False)
    ],
    to: Annotated[
        Path, typer.Option("--to", metavar="DIR", help="Destination directory (created if missing).")
    ],
    provider: ProviderOpt = ProviderName.kimi,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file of the same name.")] = False,
    sha256: Annotated[
        str | None,
        typer.Option(metavar="HEX", help="Expected SHA-256 (64 hex digits); a mismatch keeps nothing."),
    ] = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Download FILE_ID into --to; print the path it was saved under on stdout.

    A failed or interrupted download keeps nothing: no partial file, and no directory the command made.
    """
    _configure_logging(verbose, quiet)
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        _fail_usage(f"--sha256={sha256!r} is not 64 hexadecimal digits; pass the file's SHA-256 hex digest")
    client = _client(PROVIDERS[provider.value])
    try:
        created = _make_dirs(to)
    except OSError as exc:
        _fail_usage(f"--to={_quoted(to)} cannot be created ({exc.strerror}); choose another directory")
    try:
        path = _run(_download(client, file_id, to, overwrite=overwrite, sha256=sha256, quiet=quiet))
    except BaseException as exc:
        _remove_empty(created)
        if isinstance(exc, ConfigError):
            _fail_usage(str(exc))
        if isinstance(exc, LLMFilesError):
            _print_error(f"download of {file_id!r} from {provider.value} failed: {exc}")
            raise typer.Exit(TRANSFER_FAILED) from None
        raise
    _echo_line(_field(path))


async def _download(
    client: AsyncFilesClient, file_id: str, to: Path, *, overwrite: bool, sha256: str | None, quiet: bool
) -> Path:
    async with client:
        with _bar(quiet) as bars:
            task = bars.add_task(file_id, total=None)
            return await client.download(
                file_id, to, overwrite=overwrite, expected_sha256=sha256, progress=_advance(bars, task)
            )


def _client(spec: ProviderSpec) -> AsyncFilesClient:
    api_key = os.environ.get(spec.api_key_env, "")
    if not api_key:
        _fail_usage(f"{spec.api_key_env} is not set; export the {spec.name} API key in it and run again")
    try:
        settings = load_transfer_settings()
    except ConfigError as exc:
        _fail_usage(str(exc))
    try:
        return AsyncFilesClient(
            spec, api_key=api_key, base_url=os.environ.get(spec.base_url_env) or None, settings=settings
        )
    except ConfigError as exc:
        _fail_usage(f"{spec.base_url_env}: {exc}")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, where SIGTERM cancels the work as SIGINT does, so its clean-up (temp files) runs.

    Raises:
        typer.Exit: 130 after SIGINT, 143 after SIGTERM, once the cancelled work has cleaned up.
    """
    terminated = False

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            return await work
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if not terminated:
            raise
        _print_error("terminated (SIGTERM); transfers in flight were cancelled and nothing partial was kept")
        raise typer.Exit(INTERRUPTED_SIGTERM) from None
    except KeyboardInterrupt:
        _print_error("interrupted (SIGINT); transfers in flight were cancelled and nothing partial was kept")
        raise typer.Exit(INTERRUPTED_SIGINT) from None


def _make_dirs(to: Path) -> list[Path]:
    """Create `to` and its missing parents; returns the ones this call created, deepest first."""
    missing: list[Path] = []
    candidate = to.absolute()
    while not candidate.exists() and candidate != candidate.parent:
        missing.append(candidate)
        candidate = candidate.parent
    to.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(created: list[Path]) -> None:
    """Remove the directories `_make_dirs` created, deepest first, while they are empty.

    `rmdir` refuses a directory that holds anything, so nothing that appeared meanwhile is ever lost.
    """
    for directory in created:
        try:
            directory.rmdir()
        except OSError:
            return


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    configure_logging(level=level, json=False)  # standard error: stdout is for results


def _bar(quiet: bool) -> Progress:
    return Progress(
        # Descriptions are file names and ids: shown as given, never parsed as markup.
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=False,
        disable=quiet,
    )


def _advance(bars: Progress, task: TaskID) -> ProgressCallback:
    def report(done: int, total: int | None) -> None:
        bars.update(task, completed=done, total=total)

    return report


def _shown(path: Path | str) -> str:
    """`path` for a message: bytes that are not UTF-8 (a name from another system) as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _quoted(path: Path | str) -> str:
    return f"'{_shown(path)}'"


def _field(path: Path) -> bytes:
    """`path` as a stdout field: its bytes as the file system has them, so a script can open it.

    Only a tab, a line break or a backslash is escaped (``\\t``, ``\\n``, ``\\r``, ``\\\\``), so one file
    stays one line of tab-separated fields.
    """
    raw = os.fsencode(path)
    return raw.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def _echo_line(line: bytes) -> None:
    typer.echo(line + b"\n", nl=False)


def _print_error(message: str) -> None:
    _err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def _fail_usage(message: str) -> NoReturn:
    _print_error(message)
    raise typer.Exit(USAGE_ERROR)
