"""One client connection on the wire: h11 for HTTP/1.1 framing, the raw socket for everything a polite
server never does (reset, cut a body short, hang, throttle).

h11 does no I/O, so this module owns the socket: it reads big chunks (`READ_SIZE`), writes through
`loop.sock_sendall`, and can drop the connection with an RST (``SO_LINGER`` 0) instead of a FIN.

Speed: h11 copies every body byte into its buffer and out again, which halved upload throughput. So h11
parses request heads (and chunked bodies, which are rare), while a Content-Length body is read straight
from the socket, one copy from the kernel, never past its end. h11 then still believes the body is
unread, so each request gets a fresh `h11.Connection`, fed whatever bytes followed the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import h11

# Loopback moves data fastest in big reads; 256 KiB is also asyncio's own transport read size.
READ_SIZE = 256 * 1024
BODY_READ_SIZE = 1024 * 1024
FILE_CHUNK = 1024 * 1024
_MAX_HEAD = 64 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds a request body may go without a byte arriving before the server answers 408 and closes."""


class PeerGoneError(Exception):
    """The client closed or reset the connection while the server still wanted to talk."""


class BodyTimeoutError(Exception):
    """The client stopped sending its request body (it declared more bytes than it sent) for too long."""


@dataclass(frozen=True, slots=True)
class FileSlice:
    """A byte range of a file on disk, sent as a response body without loading it."""

    path: Path
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response; `body` and `file` are alternatives (a file is streamed from disk)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    file: FileSlice | None = None

    @property
    def length(self) -> int:
        return self.file.length if self.file is not None else len(self.body)


@dataclass(slots=True)
class Pacer:
    """Keeps a byte stream at or under `bytes_per_second` by sleeping between pieces."""

    bytes_per_second: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _start: float | None = field(default=None, init=False)
    _done: int = field(default=0, init=False)

    @property
    def piece(self) -> int:
        """Bytes to move at once: about a tenth of a second's worth, so the rate stays smooth."""
        return max(1, min(READ_SIZE, self.bytes_per_second // 10))

    async def take(self, n: int) -> None:
        if self._start is None:
            self._start = self.clock()
        self._done += n
        delay = self._start + self._done / self.bytes_per_second - self.clock()
        if delay > 0:
            await self.sleep(delay)


class Wire:
    """The server side of one HTTP/1.1 connection.

    Args:
        sock: the accepted socket.
        body_timeout: seconds to wait for the next request body bytes. Only the client's silence counts:
            a `Pacer`'s sleeps and the server's own chaos (``slow``, ``hang``) are outside it.
    """

    def __init__(self, sock: socket.socket, body_timeout: float = DEFAULT_BODY_TIMEOUT) -> None:
        self._sock = sock
        self._body_timeout = body_timeout
        self._loop = asyncio.get_running_loop()
        self._conn = _h11_connection(b"")
        # Body bytes still to read past h11 (None: h11 frames this body, e.g. chunked).
        self._body_left: int | None = None
        self._pending = b""  # body bytes h11 received along with the head
        self._after_body = b""  # bytes past the body: the start of a pipelined request
        self.closed = False

    async def _recv(self, max_bytes: int) -> bytes:
        try:
            return await self._loop.sock_recv(self._sock, max_bytes)
        except OSError as exc:
            raise PeerGoneError(str(exc)) from exc

    async def _receive(self, max_bytes: int) -> int:
        data = await self._recv(max_bytes)
        self._conn.receive_data(data)
        return len(data)

    async def _recv_body(self, max_bytes: int) -> bytes:
        try:
            async with asyncio.timeout(self._body_timeout):
                return await self._recv(max_bytes)
        except TimeoutError:
            raise BodyTimeoutError(
                f"no request body bytes arrived for {self._body_timeout:g} s; send the whole body that "
                "Content-Length declares"
            ) from None

    async def next_request(self) -> h11.Request | None:
        """The next request's head, or None when the client has gone between requests."""
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    await self._receive(READ_SIZE)
                except PeerGoneError:
                    return None
                continue
            if isinstance(event, h11.Request):
                self._body_left = _content_length(event)
                if self._body_left is not None:
                    buffered, _ = self._conn.trailing_data
                    self._pending, self._after_body = buffered[: self._body_left], buffered[self._body_left :]
                return event
            return None  # ConnectionClosed or PAUSED after a protocol switch we never accept

    async def body(self, pacer: Pacer | None = None) -> AsyncIterator[bytes]:
        """The request body as it arrives, optionally throttled by `pacer`."""
        if self._conn.they_are_waiting_for_100_continue:
            # Without this, curl waits a second before sending a big body.
            await self.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
        if self._body_left is not None:
            async for chunk in self._direct_body(pacer):
                yield chunk
            return
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                data = await self._recv_body(pacer.piece if pacer is not None else READ_SIZE)
                self._conn.receive_data(data)
                if pacer is not None:
                    await pacer.take(len(data))
                continue
            if isinstance(event, h11.Data):
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise PeerGoneError(f"connection ended inside the request body: {event!r}")

    async def _direct_body(self, pacer: Pacer | None) -> AsyncIterator[bytes]:
        assert self._body_left is not None
        if self._pending:
            first, self._pending = self._pending, b""
            self._body_left -= len(first)
            if pacer is not None:  # it came with the head, but still counts against the cap
                await pacer.take(len(first))
            yield first
        while self._body_left > 0:
            chunk = await self._recv_body(
                min(pacer.piece if pacer is not None else BODY_READ_SIZE, self._body_left)
            )
            if not chunk:
                raise PeerGoneError(f"connection closed with {self._body_left} request body bytes unsent")
            self._body_left -= len(chunk)
            if pacer is not None:
                await pacer.take(len(chunk))
            yield chunk

    async def send(self, event: h11.Event) -> None:
        if isinstance(event, h11.Data):  # passthrough: the body piece goes out without being copied
            for piece in self._conn.send_with_data_passthrough(event) or ():
                await self._sendall(piece)
        elif data := self._conn.send(event):
            await self._sendall(data)

    async def _sendall(self, data: bytes) -> None:
        try:
            await self._loop.sock_sendall(self._sock, data)
        except OSError as exc:
            raise PeerGoneError(str(exc)) from exc

    async def respond(self, response: Response, pacer: Pacer | None = None, cut_at: int | None = None) -> int:
        """Send `response`; returns the body bytes sent.

        With `cut_at`, only that many body bytes follow the declared Content-Length, and the caller must
        close the connection (h11 is left mid-message on purpose).
        """
        headers = [*response.headers, ("Content-Length", str(response.length))]
        head = h11.Response(status_code=response.status, headers=headers)
        if response.file is None and pacer is None and cut_at is None and len(response.body) <= FILE_CHUNK:
            # One write for head and body: on loopback each send() wakes the client, and halving the
            # number of them doubled the small-request rate.
            pieces = (
                self._conn.send(head),
                self._conn.send(h11.Data(data=response.body)) if response.body else b"",
            )
            await self._sendall(b"".join((*pieces, self._conn.send(h11.EndOfMessage()) or b"")))
            return len(response.body)
        await self.send(head)
        sent = 0
        async for piece in _pieces(response, pacer.piece if pacer is not None else FILE_CHUNK):
            if cut_at is not None and sent + len(piece) >= cut_at:
                await self._sendall(piece[: cut_at - sent])
                return cut_at
            await self.send(h11.Data(data=piece))
            sent += len(piece)
            if pacer is not None:
                await pacer.take(len(piece))
        if cut_at is not None:
            return sent
        await self.send(h11.EndOfMessage())
        return sent

    async def respond_to_bad_request(self, status: int, body: bytes = b"") -> None:
        """Answer a request that cannot be served, when the protocol state still allows an answer."""
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            headers = (("Connection", "close"), *((("Content-Type", "application/json"),) if body else ()))
            await self.respond(Response(status, headers, body))

    def next_cycle(self) -> bool:
        """Get ready for the next request on this connection; False when it cannot be reused."""
        if self._body_left is None:
            if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
                self._conn.start_next_cycle()
                return True
            return False
        if self._body_left > 0 or self._conn.our_state is not h11.DONE:
            return False
        self._conn = _h11_connection(self._after_body)
        self._after_body = b""
        self._body_left = None
        return True

    async def wait_until_peer_gone(self) -> None:
        """Read and discard until the client closes: a hang that still notices the client leaving."""
        while True:
            try:
                data = await self._loop.sock_recv(self._sock, READ_SIZE)
            except OSError:
                return
            if not data:
                return

    def reset(self) -> None:
        """Drop the connection with a TCP RST rather than a FIN."""
        if not self.closed:
            self.closed = True
            # No shutdown() first: that would send the FIN this is meant to replace.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._sock.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):  # already reset by the peer
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def _h11_connection(received: bytes) -> h11.Connection:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    if received:
        conn.receive_data(received)
    return conn


def _content_length(request: h11.Request) -> int | None:
    """The declared body length, or None when h11 must frame the body (chunked)."""
    length: int | None = 0
    for name, value in request.headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)  # h11 has validated it
    return length


async def _pieces(response: Response, size: int) -> AsyncIterator[bytes]:
    if response.file is None:
        for start in range(0, len(response.body), size):
            yield response.body[start : start + size]
        return
    remaining = response.file.length
    # Reads from the page cache take microseconds; a thread hop per megabyte would cost more.
    with response.file.path.open("rb") as handle:
        handle.seek(response.file.offset)
        while remaining > 0:
            piece = handle.read(min(size, remaining))
            if not piece:
                raise RuntimeError(f"stored file {response.file.path.name!r} is shorter than recorded")
            remaining -= len(piece)
            yield piece


class RequestBody:
    """The current request's body, read at most once, counted, optionally throttled."""

    def __init__(self, wire: Wire, pacer: Pacer | None = None) -> None:
        self._wire = wire
        self._pacer = pacer
        self._done = False
        self.bytes_in = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._done:
            return
        async for chunk in self._wire.body(self._pacer):
            self.bytes_in += len(chunk)
            yield chunk
        self._done = True

    async def drain(self, limit: int | None = None) -> None:
        """Read and discard the rest of the body, or stop once `limit` body bytes have been read."""
        if limit is not None and self.bytes_in >= limit:
            return
        async for _ in self.chunks():
            if limit is not None and self.bytes_in >= limit:
                return
