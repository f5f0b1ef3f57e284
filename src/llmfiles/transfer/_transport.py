"""httpx's own HTTP transport, reading the socket 128 KiB at a time instead of 64 KiB.

httpcore asks its network stream for at most 64 KiB per read, while asyncio's socket transport receives
up to 256 KiB at once: anyio then hands each 256 KiB over in four pieces, copying the rest every time,
and every piece costs the event loop a trip through httpcore, h11 and anyio (a cancel scope for the
timeout, the transport's reading resumed and paused). A download is nothing but those trips. Measured
on loopback, one 50 MB download at a time, unchecked (no `expected_sha256`): httpx's 64 KiB reads with
1 MiB write batches ran at 480-500 MB/s for 1.40-1.48 CPU s/GB, 128 KiB reads with 768 KiB batches at
510-570 MB/s for 1.14-1.18 s/GB at the same 1.67 MB peak. 256 KiB reads were faster again (580 MB/s,
1.06 s/GB) but each read's bytes live in three copies for a moment (the socket's chunk, h11's buffer,
the body chunk), and the download's peak went past 2 MB.

httpcore takes a network backend (its documented extension point) but httpx builds its pool without a
way to pass one, so this transport builds the same pool httpx would, with the backend added. Everything
else (request and response mapping, httpcore's errors as httpx's) is httpx's own code.
"""

# The `timeout` parameters are httpcore's network interface, not ours to replace with asyncio.timeout.
# ruff: noqa: ASYNC109

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["READ_SIZE", "LargeReadTransport"]

READ_SIZE = 128 * 1024
"""Bytes asked of the socket per read (half of what asyncio's transport receives at most at once)."""


class LargeReadTransport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport` (HTTP/1.1, no proxy) whose connections read `read_size` bytes at a time.

    Proxies from the environment are unaffected: httpx mounts its own transports for them.
    """

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits, read_size: int = READ_SIZE) -> None:
        super().__init__(verify=verify, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_LargeReadBackend(read_size),
        )


class _LargeReadBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, with every stream it opens wrapped in `_LargeReadStream`."""

    def __init__(self, read_size: int) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._read_size = read_size

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _LargeReadStream(stream, self._read_size)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _LargeReadStream(stream, self._read_size)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _LargeReadStream(httpcore.AsyncNetworkStream):
    """A network stream whose reads ask for at least `read_size` bytes, whatever the caller asked.

    Returning more than ``max_bytes`` is safe here: every httpcore read hands the bytes straight to a
    parser (h11, a TLS or proxy handshake) that takes any amount.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream, read_size: int) -> None:
        self._inner = inner
        self._read_size = read_size

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, self._read_size), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _LargeReadStream(stream, self._read_size)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
