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
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from llmfiles._errors import IntegrityError
from llmfiles.transfer._local import unreadable
from llmfiles.transfer._models import Progress

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

        Reading and hashing run in a worker thread (``hashlib`` and file reads release the GIL), one chunk
        ahead of the one being sent, so the event loop only moves bytes to the socket while the next chunk
        is read and hashed. aiofiles would need a second thread hop per chunk for the hash (or hash in the
        loop), so the thread work is ours (``asyncio.to_thread``).

        Raises:
            ConfigError: the file cannot be opened or read (gone, no permission).
            IntegrityError: the file shrank or grew while it was being sent.
        """
        hasher = hashlib.sha256()
        yield self._head
        try:
            source = await asyncio.to_thread(open, self._path, "rb", buffering=0)
        except OSError as exc:
            raise unreadable(self._path, exc) from exc
        ahead = self._read(source, min(self._chunk_size, self._size), hasher)
        try:
            sent = 0
            while sent < self._size:
                chunk = await self._result(ahead)
                if not chunk:
                    raise IntegrityError(
                        f"path={os.fspath(self._path)!r} shrank to {sent} bytes while being sent "
                        f"(expected {self._size}); upload it again once it stops changing"
                    )
                sent += len(chunk)
                remaining = self._size - sent
                if remaining:
                    ahead = self._read(source, min(self._chunk_size, remaining), hasher)
                else:  # nothing left to send: one more byte would mean the file grew
                    ahead = self._read(source, 1, None)
                if self._progress is not None:
                    self._progress(sent, self._size)
                yield chunk
            if await self._result(ahead):
                raise IntegrityError(
                    f"path={os.fspath(self._path)!r} grew beyond {self._size} bytes while being sent; "
                    "upload it again once it stops changing"
                )
        finally:
            # The worker thread may still be reading: let it finish before its file is closed.
            await asyncio.wait({ahead})
            if not ahead.cancelled():
                ahead.exception()  # a read nobody awaited (the send was abandoned) must not log an error
            source.close()
        self.sha256 = hasher.hexdigest()
        yield self._tail

    @staticmethod
    def _read(source: BinaryIO, size: int, hasher: Hash | None) -> asyncio.Future[bytes]:
        return asyncio.ensure_future(asyncio.to_thread(_read_and_hash, source, size, hasher))

    async def _result(self, read: asyncio.Future[bytes]) -> bytes:
        try:
            return await read
        except OSError as exc:
            raise unreadable(self._path, exc) from exc


def _read_and_hash(source: BinaryIO, size: int, hasher: Hash | None) -> bytes:
    chunk = source.read(size)
    if hasher is not None:
        hasher.update(chunk)
    return chunk
