"""`BodyLimits`: request bodies are capped in size and in time, and an aborted request is one log line.

A body larger than the provider accepts is refused by its ``Content-Length`` before a byte is read (413),
and a body without one (chunked) is cut off at the same cap. A client that sends nothing for
`timeout_s` while its body is unfinished gets a 408. Either way, and when the client hangs up, the
request ends with one warning line instead of a traceback, and the handler's clean-up (the spool) runs
because the error is raised inside its ``receive``.
"""

from __future__ import annotations

import asyncio

import structlog
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.service._errors import failure

__all__ = ["BodyLimits"]

_log = structlog.get_logger(__name__)

# What a multipart body adds around its one file: boundaries and part headers, a few hundred bytes; the
# spool then holds the file itself to the exact limit.
_ENVELOPE_BYTES = 64 * 1024


class _AbortError(Exception):
    """Raised inside the app's ``receive`` to end a request; `BodyLimits` answers it."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


class BodyLimits:
    """Pure ASGI middleware capping every request body at `max_bytes` and `timeout_s` between pieces.

    Args:
        app: the wrapped app.
        max_bytes: the largest file accepted (the provider's limit for the purpose); multipart bodies
            may add a small envelope on top.
        timeout_s: longest wait for the next piece of an unfinished body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cap = self._max_bytes
        if headers.get("content-type", "").startswith("multipart/form-data"):
            cap += _ENVELOPE_BYTES
        declared = headers.get("content-length")
        if declared is not None:
            refused = self._refuse(declared, cap)
            if refused is not None:
                await self._answer(scope, receive, send, refused, received=0)
                return
        received = 0
        finished = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, finished
            if finished:  # past the body, `receive` only reports a disconnect: no deadline then
                return await receive()
            try:
                async with asyncio.timeout(self._timeout_s):
                    message = await receive()
            except TimeoutError:
                raise _AbortError(
                    408,
                    "RequestTimeout",
                    f"no part of the body arrived for {self._timeout_s:g} s; send the body without pauses",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if received > cap:
                    raise _AbortError(
                        413, "FileTooLargeError", self._too_large(f"the body passed {cap} bytes")
                    )
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _AbortError as abort:
            if started:  # the answer is on its way: nothing left to say but the log line
                _log.warning("request aborted", reason=abort.error, path=scope["path"], received=received)
                return
            await self._answer(scope, receive, send, abort, received=received)
        except ClientDisconnect:
            _log.warning(
                "request aborted", reason="client disconnected", path=scope["path"], received=received
            )

    def _refuse(self, declared: str, cap: int) -> _AbortError | None:
        """A refusal for a bad or too large ``Content-Length``, or None to go ahead."""
        if not declared.isdigit():
            message = f"Content-Length={declared!r} is not a byte count; send the body's length in bytes"
            return _AbortError(400, "ConfigError", message)
        if int(declared) > cap:
            return _AbortError(413, "FileTooLargeError", self._too_large(f"Content-Length={int(declared)}"))
        return None

    def _too_large(self, what: str) -> str:
        limit = self._max_bytes
        return f"{what} is over the {limit} bytes the provider accepts for this purpose; send a smaller file"

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, abort: _AbortError, *, received: int
    ) -> None:
        _log.warning("request aborted", reason=abort.error, path=scope["path"], received=received)
        # The rest of the body stays unread, so the connection cannot carry another request.
        response = failure(abort.error, abort.message, abort.status, headers={"Connection": "close"})
        await response(scope, receive, send)
