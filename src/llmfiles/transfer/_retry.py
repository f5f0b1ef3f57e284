"""When to try again and how long to wait: jittered exponential backoff and ``Retry-After``."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime

from llmfiles.transfer._settings import TransferSettings


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (RFC 9110: delta-seconds or an HTTP-date).

    Returns None for a missing or unreadable header, and never a negative wait (a date in the past
    means "now").
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may parse without a zone
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, settings: TransferSettings, *, retry_after: float | None = None) -> float:
    """The wait before attempt number ``attempt + 1`` (``attempt`` >= 1 is the one that just failed).

    A provider's ``Retry-After`` is honoured, capped at ``settings.retry_after_max``. Otherwise "full
    jitter" (AWS architecture blog, "Exponential Backoff And Jitter"): uniform in [0, step] with the step
    doubling from ``backoff_base`` up to ``backoff_max``, which spreads a crowd of retrying clients out.
    """
    if retry_after is not None:
        return min(retry_after, settings.retry_after_max)
    step = min(settings.backoff_max, settings.backoff_base * 2.0 ** min(attempt - 1, 62))
    return settings.jitter() * step
