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


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport failures that happen before a request leaves: nothing can have been stored."""


async def with_retries(
    spec: ProviderSpec,
    settings: TransferSettings,
    *,
    action: str,
    attempt: Callable[[], Awaitable[httpx.Response]],
    parse: Callable[[httpx.Response], T],
    reconcile: Callable[[LLMFilesError], Awaitable[T | None]] | None = None,
) -> tuple[T, int, bool]:
    """Run `attempt` until it succeeds, retrying 429/5xx and transport errors with backoff.

    Args:
        spec: the provider, for its error shapes and rate-limit statuses.
        settings: retries, backoff, clock, sleep and the reconcile grace period.
        action: what is being done, for messages and logs (``"upload report.pdf"``).
        attempt: one try; returns a response whose body has been consumed (or written elsewhere).
        parse: turns a 2xx response into the result; raising `TransportError` marks the answer as
            malformed, which is handled like a lost response.
        reconcile: for a non-idempotent request, called with the failure after every answer that leaves
            open whether the request took effect: a transport error once the request may have left, a
            malformed answer, any 5xx (a gateway's 502/503/504 or the origin's own failure may come after
            the origin stored the file). A non-None result is adopted instead of sending again; it may
            raise to stop the retries (an outcome it cannot settle). After a timeout waiting for the
            answer (read timeout, 504) that found nothing, it is asked again every
            ``settings.reconcile_interval`` for ``settings.reconcile_grace`` seconds, since the request
            may still be on its way to the provider.

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
        may_have_landed = False
        still_landing = False
        try:
            response = await attempt()
            if response.is_success:
                return parse(response), tries, False
        except httpx.TransportError as exc:
            error = transport_error(spec, exc, action=action)
            error.__cause__ = exc
            may_have_landed = not isinstance(exc, _NOT_SENT)
            still_landing = isinstance(exc, httpx.ReadTimeout)
        except TransportError as exc:  # a malformed answer from `parse`
            error = exc
            may_have_landed = True
        else:
            error = provider_error(spec, response, now=settings.clock())
            if not is_retryable_status(spec, response.status_code):
                raise error
            if isinstance(error, RateLimitedError):
                retry_after = error.retry_after
            may_have_landed = response.status_code >= 500
            still_landing = response.status_code == 504
        if may_have_landed and reconcile is not None:
            found = await _look(reconcile, error, settings, patient=still_landing)
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


async def _look(
    reconcile: Callable[[LLMFilesError], Awaitable[T | None]],
    error: LLMFilesError,
    settings: TransferSettings,
    *,
    patient: bool,
) -> T | None:
    """Ask `reconcile` once, and when `patient` keep asking through the grace period until it finds."""
    found = await reconcile(error)
    looks = settings.reconcile_looks if patient else 0
    for _ in range(looks):
        if found is not None:
            break
        await settings.sleep(settings.reconcile_interval)
        found = await reconcile(error)
    return found
