"""The one retry loop every request goes through: upload, download, list, retrieve, delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import structlog

from llmfiles._errors import LLMFilesError, RateLimitedError, TransportError
from llmfiles.providers import ProviderSpec
from llmfiles.transfer._failures import is_retryable_status, provider_error, transport_error
from llmfiles.transfer._retry import backoff_delay
from llmfiles.transfer._settings import TransferSettings

T = TypeVar("T")

_log = structlog.get_logger("llmfiles.transfer")


async def with_retries(
    spec: ProviderSpec,
    settings: TransferSettings,
    *,
    action: str,
    attempt: Callable[[], Awaitable[httpx.Response]],
    parse: Callable[[httpx.Response], T],
    reconcile: Callable[[], Awaitable[T | None]] | None = None,
) -> tuple[T, int, bool]:
    """Run `attempt` until it succeeds, retrying 429/5xx and transport errors with backoff.

    Args:
        spec: the provider, for its error shapes and rate-limit statuses.
        settings: retries, backoff, clock and sleep.
        action: what is being done, for messages and logs (``"upload report.pdf"``).
        attempt: one try; returns a response whose body has been consumed (or written elsewhere).
        parse: turns a 2xx response into the result; raising `TransportError` marks the answer as
            malformed, which is handled like a lost response.
        reconcile: after a lost or malformed answer to a non-idempotent request, finds what the
            request may have created anyway; a non-None result is adopted instead of sending again.

    Returns:
        ``(result, attempts made, whether the result came from reconcile)``.

    Raises:
        ProviderError: a non-retryable status, or a retryable one after the retries ran out.
        TransportError: the connection failed on every attempt (`TransferTimeoutError` for timeouts).
    """
    tries = 0
    while True:
        tries += 1
        error: LLMFilesError
        retry_after: float | None = None
        try:
            response = await attempt()
            if response.is_success:
                return parse(response), tries, False
        except httpx.TransportError as exc:
            error = transport_error(spec, exc, action=action)
            error.__cause__ = exc
        except TransportError as exc:  # a malformed answer from `parse`
            error = exc
        else:
            error = provider_error(spec, response, now=settings.clock())
            if not is_retryable_status(spec, response.status_code):
                raise error
            if isinstance(error, RateLimitedError):
                retry_after = error.retry_after
        if isinstance(error, TransportError) and reconcile is not None:
            found = await reconcile()
            if found is not None:
                _log.info("transfer.reconciled", provider=spec.name, action=action, attempts=tries)
                return found, tries, True
        if tries > settings.retries:
            raise error
        delay = backoff_delay(tries, settings, retry_after=retry_after)
        _log.warning(
            "transfer.retry",
            provider=spec.name,
            action=action,
            attempt=tries,
            error=type(error).__name__,
            delay_s=round(delay, 3),
        )
        await settings.sleep(delay)
