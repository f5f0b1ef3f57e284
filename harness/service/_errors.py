"""Every failure the service answers, in one JSON shape: ``{"error": <class name>, "message": <text>}``."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse

from llmfiles import (
    ConfigError,
    FileTooLargeError,
    LLMFilesError,
    NotFoundError,
    RegistryError,
    UnsupportedPurposeError,
)

__all__ = ["BAD_INPUT", "error_response", "failure"]

BAD_INPUT = (ConfigError, UnsupportedPurposeError, FileTooLargeError)


def failure(
    error: str,
    message: str,
    status: int,
    *,
    background: BackgroundTask | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON answer for a failed request."""
    body = {"error": error, "message": message}
    return JSONResponse(body, status_code=status, background=background, headers=headers)


def _status(exc: LLMFilesError) -> int:
    if isinstance(exc, FileTooLargeError):
        return 413
    if isinstance(exc, BAD_INPUT):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, RegistryError):
        return 503
    return 502


def error_response(
    exc: LLMFilesError,
    *,
    hide: Iterable[tuple[str, str]] = (),
    background: BackgroundTask | None = None,
) -> JSONResponse:
    """413 too large, 400 other bad input, 404 unknown file, 503 registry failed, else 502.

    `hide` pairs an internal text with what the caller sees instead: the library's messages name the
    spooled file, and a caller must never learn where the service keeps bodies.
    """
    message = str(exc)
    for internal, shown in hide:
        message = message.replace(internal, shown)
    return failure(type(exc).__name__, message, _status(exc), background=background)
