"""The file side of one download: received bytes gathered into batches, written (and hashed) in a worker.

A socket read hands over at most 128 KiB (`_transport`), and one hop to a worker thread costs the loop
about 100 us of CPU (a future, a wake-up, the GIL changing hands twice). One hop per read (as
``aiofiles`` does) doubled a download's CPU per GB and halved its speed on loopback; one hop per batch of
`write_batch_size` bytes takes that cost off. The SHA-256, when there is one to check, runs in the same
hop: ``hashlib`` lets go of the GIL for buffers over 2 KiB, so the loop goes on receiving while the
worker hashes and writes. Without a hash to check the bytes are not hashed at all: nothing would read
the digest, and it cost a quarter of a download's CPU.

The batch is one buffer of `write_batch_size` bytes, allocated once and filled again after every
write: a buffer that grew by appending (``bytearray +=``) now and then had to move while it grew, and
the old and the new copy lived side by side, so the longer the download the likelier its peak doubled
(1.65 MB at 50 MB, 2.65 MB at 1 GiB with 1 MiB batches).

Bytes that arrived but were not yet written stay in the batch across a broken connection: they are
valid, and a resumed request only asks for what follows them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from llmfiles.transfer._steps import close_between_steps

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

__all__ = ["BatchWriter"]

_SMALLEST_BATCH = 4096
_T = TypeVar("_T")


class BatchWriter:
    """Appends to an open file descriptor in batches; owns the descriptor and closes it.

    Every step on the descriptor runs in a worker under one lock, so an abandoned download (cancelled,
    failed) never closes it under a running write (`close_between_steps`).

    Args:
        fd: the file to append to, open for writing; the writer closes it.
        batch_size: bytes gathered before one worker step writes them.
        hashed: whether to keep a SHA-256 of the bytes written (`hasher`).
    """

    def __init__(self, fd: int, batch_size: int, *, hashed: bool) -> None:
        self._fd: int | None = fd
        self._buffer: bytearray | None = None  # allocated by the first write
        self._batch_size = batch_size
        self._filled = 0
        self._lock = threading.Lock()
        self._written = 0
        self.hasher: Hash | None = hashlib.sha256() if hashed else None
        """SHA-256 of the bytes written so far (None when not `hashed`)."""
        self.received = 0
        """Bytes accepted so far: written, or waiting in the batch to be."""

    def expect(self, remaining: int | None) -> None:
        """Size the batch for a body of `remaining` bytes (None: unknown) before the first write.

        A small file then holds a buffer of its own size, not a whole batch; more bytes than announced
        still go through (the batch fills and is written more often).
        """
        if self._buffer is None and remaining is not None:
            self._batch_size = max(_SMALLEST_BATCH, min(self._batch_size, remaining))

    async def write(self, chunk: bytes) -> None:
        """Accept `chunk`, writing the batch out each time it fills."""
        if self._buffer is None:
            self._buffer = bytearray(self._batch_size)
        self.received += len(chunk)
        rest = memoryview(chunk)
        while rest:
            take = min(self._batch_size - self._filled, len(rest))
            self._buffer[self._filled : self._filled + take] = rest[:take]
            self._filled += take
            rest = rest[take:]
            if self._filled == self._batch_size:
                await self.flush()

    async def flush(self) -> None:
        """Write (and hash) whatever the batch holds."""
        if self._filled:
            await asyncio.to_thread(self._locked, self._append, self._filled)
            self._filled = 0

    async def finish(self, then: Callable[[], _T]) -> _T:
        """Write the rest, force the data to the disk, close the file, then run `then`: one worker step.

        `then` is the rename into place; sharing the step saves each download a hop to a worker (with
        150 downloads of 512 KB at once, one hop fewer per download saved 5 % of their CPU).
        """
        result = await asyncio.to_thread(self._finish, self._filled, then)
        self._filled = 0
        return result

    async def restart(self) -> None:
        """Drop everything accepted so far: the next byte accepted is the file's first."""
        self._filled = 0
        self.received = 0
        self.hasher = None if self.hasher is None else hashlib.sha256()
        await asyncio.to_thread(self._locked, self._truncate)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close now if no write runs, else in a worker once the running write ends."""
        close_between_steps(self._lock, self._close, loop)

    # The steps below run in a worker thread (the close may run in the loop), one at a time.

    def _locked(self, step: Callable[..., None], *args: int) -> None:
        with self._lock:
            if self._fd is None:
                raise ValueError("the download was abandoned")
            step(self._fd, *args)

    def _append(self, fd: int, length: int) -> None:
        if not length or self._buffer is None:
            return
        batch = memoryview(self._buffer)[:length]
        view = batch
        while view:  # pwrite may write less than asked (a signal, a full disk's last block): write the rest
            done = os.pwrite(fd, view, self._written)
            self._written += done
            view = view[done:]
        if self.hasher is not None:
            self.hasher.update(batch)

    def _finish(self, length: int, then: Callable[[], _T]) -> _T:
        self._locked(self._append_sync_close, length)
        return then()

    def _append_sync_close(self, fd: int, length: int) -> None:
        self._append(fd, length)
        os.fsync(fd)
        self._close()

    def _truncate(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        self._written = 0

    def _close(self) -> None:
        self._buffer = None  # under the lock: no write uses it; the rename need not wait with it alive
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
