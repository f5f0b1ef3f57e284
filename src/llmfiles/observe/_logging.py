"""Structured logs (structlog) that never carry a secret.

`redact_secrets` is a structlog processor: any field whose name contains ``key``, ``token``, ``secret``,
``password`` or ``authorization`` has its value replaced, at any depth of nested mappings and lists, and
any string value has ``Bearer <credential>`` and API-key-shaped words (``sk-...``) masked, so a key pasted
into a message or an exception text is caught too. Names in `SAFE_FIELDS` (``key_hash``: already a keyed
digest) pass unchanged.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, TextIO

import structlog

REDACTED: Final = "[REDACTED]"
SAFE_FIELDS: Final = frozenset({"key_hash"})

_SECRET_NAME = re.compile(r"key|token|secret|password|passwd|authorization|cookie", re.IGNORECASE)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# Moonshot (OpenAI-style) keys start with sk-; Zhipu GLM keys are "<32-char id>.<secret>".
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}|\b[A-Za-z0-9]{32,}\.[A-Za-z0-9]{8,}\b")


def redact_secrets(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named fields and credential-shaped text (see the module docstring)."""
    for name in list(event_dict):
        event_dict[name] = _redact(name, event_dict[name])
    return event_dict


def _redact(name: str, value: Any) -> Any:
    if name not in SAFE_FIELDS and _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return _KEY_LIKE.sub(REDACTED, _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value))
    if isinstance(value, Mapping):
        return {key: _redact(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact("", item) for item in value]
    return value


def configure_logging(*, level: int = logging.INFO, json: bool = True, file: TextIO | None = None) -> None:
    """Configure structlog for the process: timestamps, level, redaction last before rendering.

    Redaction runs after every other processor, so nothing added later (exception text included) escapes
    it. `json=False` renders for a terminal. `file` defaults to standard error, looked up at each line:
    standard output is for a program's results, and a progress display that redirects standard error
    (rich's) then prints log lines above its bars.
    """
    colors = (file or sys.stderr).isatty()  # no escape codes in a log file or a pipe
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=colors)
    )
    factory: Any = (
        structlog.PrintLoggerFactory(file=file)
        if file is not None
        else lambda *_args: structlog.PrintLogger(file=sys.stderr)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
