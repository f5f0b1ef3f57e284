"""`BearerAuth`: every request but the health probe presents the service's token, or gets a 401."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.service._errors import failure

__all__ = ["BearerAuth"]


class BearerAuth:
    """Pure ASGI middleware: ``Authorization: Bearer <token>`` or 401, before any body is read.

    The comparison is `hmac.compare_digest`, so the time it takes says nothing about how much of a
    guess was right.

    Args:
        app: the wrapped app.
        token: the expected token.
        open_paths: paths served without a token (the health probe, which shows nothing private).
    """

    def __init__(self, app: ASGIApp, *, token: str, open_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open_paths:
            await self.app(scope, receive, send)
            return
        presented = Headers(scope=scope).get("authorization", "").encode("latin-1")
        if hmac.compare_digest(presented, self._expected):
            await self.app(scope, receive, send)
            return
        message = (
            "missing or wrong bearer token; send 'Authorization: Bearer <token>' as the service printed it"
        )
        response = failure("AuthenticationError", message, 401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
