"""Request bodies spooled to a file, hashed on the way in so the registry key costs no second read.

Each body goes into a slot directory lent by `SpoolSlots` (the file keeps the client's name, which the
upload sends on), so the number of bodies on disk is bounded and no directory is made or removed per
request: on a busy overlay filesystem a ``rmdir`` per request cost a fifth of the service's CPU. The
body is gathered in memory and written by a worker thread once `_FLUSH_BYTES` have arrived (and at the
end), together with the hashing: a 0.2 MB body costs the event loop one hand-off to a thread instead of
a file open, a write per network chunk and a hash on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request

from llmfiles import ConfigError, FileTooLargeError
from llmfiles.transfer import sanitize_filename

__all__ = ["SpoolSlots", "Spooled", "SpoolsBusyError", "spool"]

_CHUNK = 256 * 1024
# Bodies below this are written in one go; above it, memory per request stays at this much.
_FLUSH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Spooled:
    """A request's file on local disk.

    Args:
        path: the file, alone in its slot directory (`remove` it before the slot goes back).
        name: the client's file name, sanitised.
        sha256: the content's SHA-256 (hex), computed while it was written.
        size: its size in bytes.
    """

    path: Path
    name: str
    sha256: str
    size: int

    def remove(self) -> None:
        """Delete the file (one system call: cheaper inline than a hand-off to a thread)."""
        _remove(self.path)


def _remove(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


class SpoolsBusyError(Exception):
    """Every spool slot stayed lent for the whole wait; the caller should answer 503 and retry later."""


class SpoolSlots:
    """`count` directories under `root`, each lent to one request at a time.

    Args:
        root: made if missing; files a killed run left in its slots are removed.
        count: how many bodies may be on disk at once.
    """

    def __init__(self, root: Path, count: int) -> None:
        self._free: asyncio.Queue[Path] = asyncio.Queue()
        for index in range(count):
            slot = root / str(index)
            slot.mkdir(parents=True, exist_ok=True)
            for stale in slot.iterdir():
                stale.unlink()
            self._free.put_nowait(slot)

    @contextlib.asynccontextmanager
    async def lend(self, timeout_s: float) -> AsyncIterator[Path]:
        """A free slot for the block, waiting for one at most `timeout_s`.

        Raises:
            SpoolsBusyError: none came free in time.
        """
        try:
            slot = self._free.get_nowait()  # the common case: no timer to arm and cancel
        except asyncio.QueueEmpty:
            try:
                async with asyncio.timeout(timeout_s):
                    slot = await self._free.get()
            except TimeoutError:
                raise SpoolsBusyError(f"no spool slot came free within {timeout_s:g} s") from None
        try:
            yield slot
        finally:
            self._free.put_nowait(slot)


class _Sink:
    """The spool file, written and hashed by worker threads (one at a time: the caller awaits each).

    A request cancelled while a thread writes cannot stop that thread, so `discard` waits for the write
    under the lock and a write that starts after it does nothing: no descriptor is closed under a
    writer, and no directory is made after the clean-up.
    """

    def __init__(self, path: Path) -> None:
        self._target = path
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._discarded = False
        self.path: Path | None = None
        self.digest = hashlib.sha256()

    def write(self, chunks: list[bytes], *, last: bool) -> None:
        with self._lock:
            if not self._discarded:
                self._write(chunks, last=last)

    def discard(self) -> None:
        with self._lock:
            self._discarded = True
            self._close()
            _remove(self.path)

    def _write(self, chunks: list[bytes], *, last: bool) -> None:
        if self._fd is None:
            # The slot is this request's alone; a file a crash left there is overwritten, never followed.
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            self._fd = os.open(self._target, flags, 0o600)
            self.path = self._target
        for chunk in chunks:
            self.digest.update(chunk)  # hashlib lets go of the GIL for buffers this size
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
        if last:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def spool(request: Request, slot: Path, *, max_bytes: int) -> Spooled:
    """Write the request's file into the `slot` directory, streaming and hashing.

    The file is a raw body (name from ``?name=``) or the multipart field ``file``. On any failure (a bad
    multipart body, a client that hangs up mid-body) the file is removed: nothing partial stays behind.

    Raises:
        ConfigError: an empty file, or a multipart body without a ``file`` part.
        FileTooLargeError: the file is larger than `max_bytes`.
    """
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:  # closes the spooled parts, even on error
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ConfigError(
                    "field='file' is missing from the multipart body; send the file in a 'file' part"
                )
            name = sanitize_filename(upload.filename or "upload.bin")
            return await _write(_parts(upload), slot / name, name, max_bytes)
    name = sanitize_filename(request.query_params.get("name", "upload.bin"))
    return await _write(request.stream(), slot / name, name, max_bytes)


async def _parts(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


async def _write(chunks: AsyncIterator[bytes], path: Path, name: str, max_bytes: int) -> Spooled:
    sink = _Sink(path)
    pending: list[bytes] = []
    pending_bytes = size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise FileTooLargeError(
                    f"the file passed {max_bytes} bytes, the provider's limit for this purpose; "
                    "send a smaller file"
                )
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= _FLUSH_BYTES:
                await asyncio.to_thread(sink.write, pending, last=False)
                pending, pending_bytes = [], 0
        if size == 0:
            raise ConfigError(
                "the request body is empty; send the file's bytes (raw, or a multipart 'file' part)"
            )
        await asyncio.to_thread(sink.write, pending, last=True)
    except BaseException:
        sink.discard()
        raise
    assert sink.path is not None  # written above: the body was not empty
    return Spooled(sink.path, name, sink.digest.hexdigest(), size)
