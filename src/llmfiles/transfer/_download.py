"""One streamed download: temp file in the target directory, resume by Range, checks, atomic placement.

The bytes go to a ``.llmfiles-*.part`` file created (``O_EXCL``) beside the destination, so the final
rename never crosses a file system; the file only gets its real name once the length (and the hash,
when known) checked out and the data reached the disk. Any failure or cancellation removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from llmfiles._errors import (
    ConfigError,
    IntegrityError,
    LLMFilesError,
    TransferIncompleteError,
    TransferTimeoutError,
    TransportError,
)
from llmfiles.providers import ProviderSpec
from llmfiles.transfer._attempts import with_retries
from llmfiles.transfer._filenames import numbered, parse_content_disposition, safe_join, sanitize_filename
from llmfiles.transfer._limit import process_limit
from llmfiles.transfer._local import unwritable
from llmfiles.transfer._models import FileObject, Progress
from llmfiles.transfer._settings import TransferSettings
from llmfiles.transfer._writer import BatchWriter

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_MAX_COLLISIONS = 1000
"""How many `` (n)`` suffixes to try before giving up on finding a free name."""


class _CorruptBodyError(TransportError):
    """The body arrived but its length or hash is wrong: retried like a broken transfer, reported as
    `IntegrityError` once the retries ran out."""


class _Transfer:
    """The state one download carries across attempts, so a retry can resume where the last one broke."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: TransferSettings,
        *,
        file_id: str,
        out: BatchWriter,
        progress: Progress | None,
        expected_size: int | None,
        expected_sha256: str | None,
        spec: ProviderSpec,
        describe: Callable[[], Awaitable[FileObject]],
        named: bool,
        temp: Path,
    ) -> None:
        self._http = http
        self._spec = spec
        self._describe = describe
        self._named = named
        self._temp = temp
        self._hash_mismatch = False
        self._not_json = False
        self.metadata: FileObject | None = None
        self._settings = settings
        self._file_id = file_id
        self._url = f"files/{quote(file_id, safe='')}/content"
        self._expected_size = expected_size
        self._expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self._stale = False
        self._out = out
        self._progress = progress
        self.total: int | None = None
        self.disposition_name: str | None = None

    @property
    def received(self) -> int:
        """Bytes of the body accepted so far, over every attempt: where a resumed request starts."""
        return self._out.received

    async def attempt(self) -> httpx.Response:
        # identity: lengths and Range offsets must count the stored bytes, not a compressed form.
        headers = {"Accept-Encoding": "identity"}
        if self._hash_mismatch:
            # Before fetching again: a file whose /content is extracted text can never match.
            self._hash_mismatch = False
            await self._refuse_hash_of_original()
        if self._stale:
            await self._restart()
            self._stale = False
        if self.received:
            headers["Range"] = f"bytes={self.received}-"
        async with (
            process_limit(self._settings.max_concurrency, self._settings.limit_group),
            self._http.stream("GET", self._url, headers=headers) as response,
        ):
            if response.status_code == 416 and self.received:
                # The resume point is past the end (the file changed, or every byte had arrived but
                # the end of the answer did not): start over rather than fail.
                self._stale = True
                raise httpx.RemoteProtocolError(f"Range from byte {self.received} refused with 416")
            if not response.is_success:
                await response.aread()
                return response
            await self._begin(response)
            # No chunk_size: httpx's re-chunker would drop the bytes it holds when the connection breaks,
            # and every byte written is one a resumed request need not fetch again.
            async for chunk in response.aiter_bytes():
                await self._out.write(chunk)
                if self._progress is not None:
                    self._progress(self.received, self.total)
            await self._out.flush()  # the checks below read the hash (and maybe the file)
        if not (self._named or self.disposition_name):
            # Unnamed by the caller and the answer: the metadata names the file and tells its size.
            self.metadata = self.metadata or await self._describe()
            if serves_extracted_text(self._spec, self.metadata.purpose):
                self._not_json = not await asyncio.to_thread(_is_json, self._temp)
        return response

    async def _refuse_hash_of_original(self) -> None:
        try:
            self.metadata = self.metadata or await self._describe()
        except LLMFilesError:
            return  # the metadata is only advice here: the ordinary retries decide
        if serves_extracted_text(self._spec, self.metadata.purpose):
            raise ConfigError(
                f"expected_sha256 was given for file_id={self._file_id!r}, but its "
                f"purpose={self.metadata.purpose!r} makes {self._spec.name} serve the extracted text, not "
                "the uploaded bytes, so the SHA-256 of the original can never match; download it without "
                "expected_sha256"
            )

    async def _begin(self, response: httpx.Response) -> None:
        header = response.headers.get("Content-Disposition")
        if header and self.disposition_name is None:
            self.disposition_name = parse_content_disposition(header)
        content_range = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if response.status_code == 206 and content_range is not None:
            if int(content_range.group(1)) != self.received:
                await self._restart()
                # Raised as an httpx error so the retry loop treats it like any broken transfer.
                raise httpx.RemoteProtocolError(
                    f"Content-Range starts at {content_range.group(1)}, not at byte {self.received}"
                )
            if content_range.group(3) != "*":
                self.total = int(content_range.group(3))
                self._out.expect(self.total - self.received)
            return
        if self.received:  # the server ignored Range and sends everything again
            await self._restart()
        length = response.headers.get("Content-Length", "")
        # A server that compresses anyway declares the compressed length: no count to check against.
        encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
        self.total = int(length) if length.isdigit() and not encoded else None
        self._out.expect(self.total)

    def verify(self, _response: httpx.Response) -> None:
        """The retry loop's check of a complete answer: the length, then the hash where known.

        Lengths come from Content-Length, `expected_size` and, when the metadata was fetched for the
        name, the provider's ``bytes`` (where ``/content`` is the stored bytes); extracted text must be
        the JSON document the provider serves. A 200 carrying something else is retried, never kept.
        """
        stored_size = None
        if self.metadata is not None and not serves_extracted_text(self._spec, self.metadata.purpose):
            stored_size = self.metadata.bytes
        if self._not_json:
            self._stale = True
            raise _CorruptBodyError(
                f"download {self._file_id}: the extracted text is not a JSON document; nothing was kept, "
                "try again"
            )
        for what, expected in (
            ("Content-Length", self.total),
            ("expected_size", self._expected_size),
            ("the provider's metadata", stored_size),
        ):
            if expected is not None and self.received != expected:
                self._stale = True
                raise _CorruptBodyError(
                    f"download {self._file_id}: got {self.received} bytes but {what} said {expected}; "
                    "nothing was kept, try again"
                )
        hasher = self._out.hasher
        digest = None if hasher is None else hasher.hexdigest()
        if self._expected_sha256 is not None and digest != self._expected_sha256:
            self._stale = self._hash_mismatch = True
            raise _CorruptBodyError(
                f"download {self._file_id}: sha256={digest!r} differs from "
                f"expected_sha256={self._expected_sha256!r}; nothing was kept, try again"
            )

    async def _restart(self) -> None:
        await self._out.restart()


async def download_to(
    http: httpx.AsyncClient,
    spec: ProviderSpec,
    settings: TransferSettings,
    *,
    file_id: str,
    dest_dir: Path,
    filename: str | None,
    overwrite: bool,
    expected_sha256: str | None,
    expected_size: int | None,
    progress: Progress | None,
    describe: Callable[[], Awaitable[FileObject]],
) -> Path:
    """Download `file_id` into `dest_dir` and return the final path (see `AsyncFilesClient.download`).

    `describe` (the provider's metadata) is only awaited when neither `filename` nor a
    Content-Disposition names the file, so the usual download costs exactly one request, and after a
    hash mismatch, to refuse a hash that can never match extracted text.
    """
    try:
        fd, temp = await _create_temp_in_worker(dest_dir)
    except OSError as exc:
        raise unwritable(dest_dir, exc) from exc
    out = BatchWriter(fd, settings.write_batch_size, hashed=expected_sha256 is not None)
    try:
        try:
            transfer = _Transfer(
                http,
                settings,
                file_id=file_id,
                out=out,
                progress=progress,
                expected_size=expected_size,
                expected_sha256=expected_sha256,
                spec=spec,
                describe=describe,
                named=filename is not None,
                temp=temp,
            )
            await _fetch(transfer, spec, settings, file_id)
            name = filename or transfer.disposition_name or metadata_name(spec, transfer.metadata) or file_id
            place = functools.partial(_place, temp, dest_dir, sanitize_filename(name), overwrite)
            return await out.finish(place)
        finally:
            out.close(asyncio.get_running_loop())  # after a failure or cancellation; finish closed it
    except LLMFilesError:  # TransportError is also an OSError (ConnectionError): keep it as it is
        raise
    except OSError as exc:
        raise unwritable(dest_dir, exc) from exc
    finally:
        # Normally already moved; after a failure or cancellation this is what leaves nothing behind.
        # Synchronous on purpose: an awaited clean-up could itself be cancelled; one unlink is instant.
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


async def _fetch(transfer: _Transfer, spec: ProviderSpec, settings: TransferSettings, file_id: str) -> None:
    """Every attempt the retry policy allows, until one body checks out; the errors a caller sees."""
    try:
        await with_retries(
            spec, settings, action=f"download {file_id}", attempt=transfer.attempt, parse=transfer.verify
        )
    except _CorruptBodyError as exc:
        raise IntegrityError(str(exc)) from exc
    except TransportError as exc:
        total = transfer.total
        if not isinstance(exc, TransferTimeoutError) and total and 0 < transfer.received < total:
            raise TransferIncompleteError(
                f"download {file_id} from {spec.name} stopped at {transfer.received} of {total} "
                "bytes after every retry; nothing was kept, try again later"
            ) from exc
        raise


def serves_extracted_text(spec: ProviderSpec, purpose: str) -> bool:
    """Whether ``/content`` of a `purpose` file is the provider's extracted text, not the stored bytes."""
    limit = spec.purposes.get(purpose)
    return limit is not None and limit.content_is_original is False


def metadata_name(spec: ProviderSpec, file: FileObject | None) -> str | None:
    """The name the metadata gives a download: extracted text says so (``report.pdf.extracted.json``)."""
    if file is None or not file.filename:
        return None
    if serves_extracted_text(spec, file.purpose):
        return f"{file.filename}.extracted.json"
    return file.filename


def _is_json(path: Path) -> bool:
    # The extracted text is one JSON document (small next to the file it was extracted from); the
    # standard library has no streaming validator, so it is parsed whole, in a worker thread.
    try:
        with path.open("rb") as source:
            json.load(source)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


async def _create_temp_in_worker(directory: Path) -> tuple[int, Path]:
    """`_create_temp` in a worker thread, leaving nothing behind if the caller is cancelled meanwhile.

    Not on the loop: with other downloads renaming and syncing in the same directory, an open waits for
    the directory's lock, and 150 downloads at once spent 8 % of the loop's time in it. A cancelled
    caller leaves while the worker may still create the file, so the worker's result removes it.
    """
    created = asyncio.get_running_loop().run_in_executor(None, _create_temp, directory)
    try:
        return await asyncio.shield(created)
    except asyncio.CancelledError:
        created.add_done_callback(_discard_temp)
        raise


def _discard_temp(created: asyncio.Future[tuple[int, Path]]) -> None:
    if created.cancelled() or created.exception() is not None:
        return
    fd, temp = created.result()
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()


def _create_temp(directory: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: its 0600 mode would stick to the final file; 0666 lets the umask decide,
    # as for any file the user creates. O_EXCL|O_NOFOLLOW: never an existing entry, never a symlink.
    while True:
        temp = directory / f".llmfiles-{secrets.token_hex(8)}.part"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666), temp
        except FileExistsError:
            continue


def _place(temp: Path, directory: Path, name: str, overwrite: bool) -> Path:
    """Give the finished temp file its name without ever writing through a symlink.

    ``os.replace`` replaces a symlink itself, never its target. Without `overwrite`, ``os.link`` fails
    on any existing entry (a symlink included), so taking a name is atomic and clobbers nothing.
    """
    target = safe_join(directory, name)
    if overwrite:
        os.replace(temp, target)
    else:
        for number in range(1, _MAX_COLLISIONS + 1):
            try:
                os.link(temp, target, follow_symlinks=False)
                break
            except FileExistsError:
                target = safe_join(directory, numbered(name, number))
        else:
            raise ConfigError(
                f"name={name!r} and {_MAX_COLLISIONS} numbered variants already exist in "
                f"dest_dir={str(directory)!r}; pass filename= or overwrite=True"
            )
        temp.unlink()
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)  # makes the new name itself durable, not only the data
    finally:
        os.close(directory_fd)
    return target
