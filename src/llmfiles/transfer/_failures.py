"""The boundary where foreign failures become llmfiles errors: provider error bodies and httpx errors.

Both arms (async and legacy) use these, so a caller sees the same error for the same failure whichever
arm ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from llmfiles._errors import (
    AuthenticationError,
    NotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransferTimeoutError,
    TransportError,
)
from llmfiles.providers import ProviderSpec
from llmfiles.transfer._retry import parse_retry_after

_MAX_MESSAGE = 300
"""A provider message is quoted in ours; a hostile or broken server cannot make it unbounded."""

# Marks of "the account is full" in either provider's message or code (Kimi: "exceeded the max file
# count"; GLM: 1113 arrears). Quota is not a status of its own at either provider, so it is read here.
_QUOTA_MARKS = ("max file count", "quota")
_QUOTA_CODES = frozenset({"1113", "exceeded_current_quota_error"})

_ADVICE: Mapping[type[ProviderError], str] = {
    AuthenticationError: "check the API key in the provider's environment variable",
    NotFoundError: "check the file id; the file may have been deleted",
    RateLimitedError: "retries ran out; slow down or try again later",
    QuotaExceededError: "delete files you no longer need, then try again",
    ServerError: "retries ran out; the provider is failing, try again later",
    ProviderError: "fix the request as the provider's message says",
}


def provider_error(spec: ProviderSpec, response: httpx.Response, *, now: float) -> ProviderError:
    """The error for a non-2xx response whose body has been read, parsed from the provider's shape.

    Kimi answers ``{"error": {"type", "message"}}``, GLM ``{"error": {"code", "message"}}``; the key
    that carries the code is ``spec.error_code_key``. An unreadable body still gives a typed error.
    """
    status = response.status_code
    code, message = _parse_error_body(spec, response.content)
    cls = _error_class(spec, status, code, message)
    advice = _ADVICE[cls]
    text = f"{spec.name} answered status={status} code={code!r} message={message!r}; {advice}"
    if cls is RateLimitedError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return RateLimitedError(
            text,
            retry_after=retry_after,
            provider=spec.name,
            status=status,
            code=code,
            provider_message=message,
        )
    return cls(text, provider=spec.name, status=status, code=code, provider_message=message)


def _parse_error_body(spec: ProviderSpec, body: bytes) -> tuple[str | None, str | None]:
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body[:_MAX_MESSAGE].decode("utf-8", errors="replace").strip()
        return None, text or None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get(spec.error_code_key)
    message = error.get("message")
    return (
        str(code) if code not in (None, "") else None,
        str(message)[:_MAX_MESSAGE] if message is not None else None,
    )


def _error_class(
    spec: ProviderSpec, status: int, code: str | None, message: str | None
) -> type[ProviderError]:
    lowered = (message or "").lower()
    if code in _QUOTA_CODES or (status in {400, 403, 429} and any(m in lowered for m in _QUOTA_MARKS)):
        return QuotaExceededError
    if status in spec.rate_limit_statuses:
        return RateLimitedError
    if status in {401, 403}:
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status >= 500:
        return ServerError
    return ProviderError


def is_retryable_status(spec: ProviderSpec, status: int) -> bool:
    """Statuses worth another attempt: the provider's "slow down" ones, 408 and every 5xx."""
    return status in spec.rate_limit_statuses or status == 408 or status >= 500


def transport_error(spec: ProviderSpec, exc: httpx.TransportError, *, action: str) -> TransportError:
    """Map an httpx transport failure; the message names the phase, never a header or the key."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return TransferTimeoutError(
            f"{action} on {spec.name} timed out ({kind}); raise the timeout or check the network"
        )
    return TransportError(f"{action} on {spec.name} failed: {kind}: {exc}; the connection broke, retry later")
