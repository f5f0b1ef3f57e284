"""The HTTP server under the app: uvicorn on httptools and uvloop, with a deadline on request heads.

uvicorn bounds an idle kept-alive connection (``timeout_keep_alive``) but not one that is slow to send its
request head: a client that opens a connection and trickles a header line now and then holds it for
ever. ASGI middleware cannot help, since the app sees a request only once its head is complete, so the
deadline lives in the protocol: from the connection (or the first byte of the next request on a
kept-alive one) the head must be complete within `head_timeout_s` and `_MAX_HEAD_BYTES`, or the client
gets a 408 (431) and the connection is closed. Bodies are bounded by `BodyLimits` in the app.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as _Cycle

__all__ = ["serve"]

_log = structlog.get_logger(__name__)

# Far above any honest head (a browser's is under 8 KiB), small enough that 200 slow clients hold little.
_MAX_HEAD_BYTES = 64 * 1024


def _answer(status: int, reason: str, error: str, message: str) -> bytes:
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _HeadDeadlineProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that closes connections whose request head is late or too large."""

    head_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_of: _Cycle | None = None
        self._head_bytes = 0
        self._start_head()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._start_head()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self._head_timer is None:
            return
        if self.cycle is not self._head_of:
            self._stop_head()  # a new request cycle began: its head is complete
            return
        self._head_bytes += len(data)  # still no complete head in what arrived so far
        if self._head_bytes > _MAX_HEAD_BYTES:
            message = f"the request head passed {_MAX_HEAD_BYTES} bytes; send shorter headers"
            self._refuse(431, "Request Header Fields Too Large", message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self._head_of = self.cycle
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_expired)

    def _stop_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        message = f"the request head did not arrive within {self.head_timeout_s:g} s; send it at once"
        self._refuse(408, "Request Timeout", message)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._stop_head()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        _log.warning("request aborted", reason=reason, client=client, received=self._head_bytes)
        if not self.transport.is_closing():
            self.transport.write(
                _answer(status, reason, "RequestTimeout" if status == 408 else "ConfigError", message)
            )
            self.transport.close()


def protocol_with_head_timeout(head_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with its head deadline."""
    return type("HeadDeadlineProtocol", (_HeadDeadlineProtocol,), {"head_timeout_s": head_timeout_s})


def serve(app: ASGIApp, sock: socket.socket, *, head_timeout_s: float, **options: Any) -> None:
    """Serve `app` on the bound, listening `sock` until SIGINT/SIGTERM; `options` go to `uvicorn.Config`."""
    config = uvicorn.Config(
        app,
        http=protocol_with_head_timeout(head_timeout_s),
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="on",
        **options,
    )
    uvicorn.Server(config).run(sockets=[sock])
