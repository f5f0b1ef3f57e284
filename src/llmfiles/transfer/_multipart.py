"""A multipart/form-data body streamed from a file on disk, re-iterable so a retry can send it again.

httpx 0.28 cannot stream multipart from an async source (encode/httpx#1620): its own multipart encoder
reads sync file objects inside the event loop. So the body is ours: an async iterable whose every
``__aiter__`` reopens the file (reads happen in a worker thread), an explicit Content-Length (httpx then
sends no chunked encoding) and the SHA-256 computed from the very chunks that go on the wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from llmfiles._errors import IntegrityError
from llmfiles.transfer._local import unreadable
from llmfiles.transfer._models import Progress
from llmfiles.transfer._steps import close_between_steps

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

_CRLF = b"\r\n"


def _quote_param(value: str) -> str:
    # The HTML5 form-submission rule, which servers (python-multipart, Go, the providers) understand:
    # percent-escape the characters that would end the quoted string or the header line.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFileBody:
    """The request body: text fields first, then the file part, read from disk chunk by chunk.

    Args:
        path: the file to send; it is opened anew on every iteration.
        filename: the name announced in the part's Content-Disposition.
        size: the file's size in bytes when the upload started; the Content-Length is built from it
            and the file must still have exactly this many bytes while it is sent.
        fields: plain form fields sent before the file (``purpose``).
        file_field: the name of the file part.
        chunk_size: bytes read per step.
        progress: called with ``(file bytes sent, size)`` after every chunk.
        boundary: the multipart boundary; random unless a test pins it.
    """

    def __init__(
        self,
        path: Path,
        *,
        filename: str,
        size: int,
        fields: Mapping[str, str],
        file_field: str = "file",
        chunk_size: int,
        progress: Progress | None = None,
        boundary: str | None = None,
    ) -> None:
        self._path = path
        self._size = size
        self._chunk_size = chunk_size
        self._progress = progress
        self.boundary = boundary or secrets.token_hex(16)
        delimiter = f"--{self.boundary}".encode("ascii")
        parts = [
            delimiter
            + _CRLF
            + f'Content-Disposition: form-data; name="{_quote_param(name)}"'.encode()
            + _CRLF * 2
            + value.encode()
            + _CRLF
            for name, value in fields.items()
        ]
        parts.append(
            delimiter
            + _CRLF
            + (
                f'Content-Disposition: form-data; name="{_quote_param(file_field)}"; '
                f'filename="{_quote_param(filename)}"'
            ).encode()
            + _CRLF
            + b"Content-Type: application/octet-stream"
            + _CRLF * 2
        )
        self._head = b"".join(parts)
        self._tail = _CRLF + delimiter + b"--" + _CRLF
        self.content_length = len(self._head) + size + len(self._tail)
        self.sha256: str | None = None
        """Hex SHA-256 of the file bytes of the last complete iteration; None until one completes."""

    @property
    def headers(self) -> dict[str, str]:
        """Content-Type with the boundary, and the exact Content-Length."""
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.content_length),
        }

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the whole body once; every call starts over from the file's first byte.

        Each chunk is read and hashed in one worker-thread step (``hashlib`` and file reads release the
        GIL), so the event loop only moves bytes to the socket. The next chunk is read only once the
        previous one has been handed to the connection: httpx keeps a reference to a sent chunk until it
        gets the next one, so reading further ahead would hold a third chunk for a moment, and the peak
        would creep up with the number of chunks (the kernel's socket buffer keeps the wire busy while
        the next chunk is read). Opening rides on the first read and the check that the file did not
        grow rides on the last one, so a file of n chunks costs n thread steps.

        Raises:
            ConfigError: the file cannot be opened or read (gone, no permission).
            IntegrityError: the file shrank or grew while it was being sent.
        """
        loop = asyncio.get_running_loop()
        hasher = hashlib.sha256()
        yield self._head
        reader = _Reader(self._path, hasher)
        try:
            sent = 0
            while sent < self._size:
                remaining = self._size - sent
                # One byte more than the last chunk needs: getting it means the file grew.
                want = self._chunk_size if remaining > self._chunk_size else remaining + 1
                try:
                    chunk = await loop.run_in_executor(None, reader.read, want, remaining)
                except OSError as exc:
                    raise unreadable(self._path, exc) from exc
                if not chunk or (want > remaining and len(chunk) < remaining):  # the last read came short
                    raise IntegrityError(
                        f"path={os.fspath(self._path)!r} shrank to {sent + len(chunk)} bytes while being "
                        f"sent "
                        f"(expected {self._size}); upload it again once it stops changing"
                    )
                if len(chunk) > remaining:
                    raise IntegrityError(
                        f"path={os.fspath(self._path)!r} grew beyond {self._size} bytes while being sent; "
                        "upload it again once it stops changing"
                    )
                sent += len(chunk)
                if self._progress is not None:
                    self._progress(sent, self._size)
                yield chunk
        finally:
            reader.close_soon(loop)
        self.sha256 = hasher.hexdigest()
        yield self._tail


class _Reader:
    """The file side of one body pass, driven from worker threads one step at a time.

    A pass that is abandoned (cancelled, failed) while a step runs in a worker must not close the file
    under that step (its descriptor number could be reused by another open file): the lock makes the
    close wait for the step, and `close_soon` hands that wait to a worker instead of the event loop
    (`close_between_steps`).
    """

    def __init__(self, path: Path, hasher: Hash) -> None:
        self._path = path
        self._hasher = hasher
        self._source: BinaryIO | None = None
        self._closed = False
        self._lock = threading.Lock()

    def read(self, size: int, hashed: int) -> bytes:
        """Up to `size` bytes (opening the file on the first call), hashing at most the first `hashed`.

        A read that asks for more than it hashes is the last one: the file is closed right after it.
        """
        with self._lock:
            if self._closed:
                raise ValueError("the body pass was abandoned")
            if self._source is None:
                self._source = open(self._path, "rb", buffering=0)  # noqa: SIM115 - closed by _close()
            chunk = self._source.read(size)
            self._hasher.update(chunk[:hashed] if len(chunk) > hashed else chunk)
            if size > hashed:
                self._close()
            return chunk

    def close_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the file now if no step runs, else in a worker once the running step ends."""
        close_between_steps(self._lock, self._close, loop)

    def _close(self) -> None:
        self._closed = True
        if self._source is not None:
            self._source.close()
            self._source = None
