"""What the mock knows about each provider's Files API, as data.

Written from ../shared/PROVIDERS.md and the providers' public documentation, independently of
``llmfiles.providers`` on purpose: a fake that shared the client's tables would agree with it by
construction and hide the client's bugs. Every *guess* below is one PROVIDERS.md marks as undocumented.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

MB = 1024 * 1024

_ID_ALPHABET = string.ascii_lowercase + string.digits


class ContentKind(Enum):
    """What ``GET /files/{id}/content`` answers for a purpose."""

    NONE = "none"
    EXTRACT = "extract"  # JSON: a deterministic stand-in for the extracted text
    BYTES = "bytes"  # the stored bytes, streamed, with Range support


@dataclass(frozen=True, slots=True)
class PurposeRule:
    """Limits and content behaviour of one upload purpose."""

    max_bytes: int
    max_files: int | None = None
    content: ContentKind = ContentKind.NONE


@dataclass(frozen=True, slots=True)
class ErrorStyle:
    """How one provider answers one kind of error: HTTP status and its own code (Kimi's ``type``)."""

    status: int
    code: str


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's Files API: routes, purposes, limits, ids, error shapes."""

    name: str
    prefix: str
    purposes: Mapping[str, PurposeRule]
    max_files: int
    max_total_bytes: int | None
    has_retrieve: bool
    paginated_list: bool
    file_keys: tuple[str, ...]
    errors: Mapping[str, ErrorStyle]
    error_code_key: str
    new_id: Callable[[random.Random, float], str]

    def error(self, kind: str, message: str) -> tuple[int, dict[str, Any]]:
        """The status and JSON body this provider sends for an error of `kind`."""
        return self.errors[kind].status, self.error_body(kind, message)

    def error_body(self, kind: str, message: str) -> dict[str, Any]:
        """The provider's JSON error body for `kind` (Kimi: OpenAI shape; GLM: code as a string)."""
        code = self.errors[kind].code
        if self.error_code_key == "type":
            return {"error": {"message": message, "type": code}}
        return {"error": {"code": code, "message": message}}


def _kimi_id(rng: random.Random, _now: float) -> str:
    return "".join(rng.choices(_ID_ALPHABET, k=20))


def _glm_id(rng: random.Random, now: float) -> str:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}"
    return f"file-{stamp}-{''.join(rng.choices(_ID_ALPHABET, k=5))}"


# Statuses the chaos `error` effect may inject, and the error kind each stands for.
CHAOS_ERROR_KINDS: Mapping[int, str] = MappingProxyType(
    {
        401: "unauthorized",
        413: "payload_too_large",
        429: "rate_limited",
        500: "server_error",
        502: "bad_gateway",
        503: "unavailable",
        504: "gateway_timeout",
    }
)

KIMI = Provider(
    name="kimi",
    prefix="/kimi/v1",
    purposes=MappingProxyType(
        {
            "file-extract": PurposeRule(100 * MB, content=ContentKind.EXTRACT),
            "image": PurposeRule(100 * MB),
            "video": PurposeRule(100 * MB),
        }
    ),
    max_files=1000,
    max_total_bytes=10 * 1024 * MB,
    has_retrieve=True,
    paginated_list=False,
    file_keys=("id", "object", "bytes", "created_at", "filename", "purpose", "status", "status_details"),
    errors=MappingProxyType(
        {
            "bad_request": ErrorStyle(400, "invalid_request_error"),
            "too_large": ErrorStyle(400, "invalid_request_error"),
            "over_100mb": ErrorStyle(400, "invalid_request_error"),
            "too_many": ErrorStyle(400, "invalid_request_error"),
            "unauthorized": ErrorStyle(401, "invalid_authentication_error"),
            "not_found": ErrorStyle(404, "resource_not_found_error"),
            # *guess*: 413 is never documented for Kimi; the OpenAI-style type is the closest.
            "payload_too_large": ErrorStyle(413, "invalid_request_error"),
            "rate_limited": ErrorStyle(429, "rate_limit_reached_error"),
            "server_error": ErrorStyle(500, "server_error"),
            "bad_gateway": ErrorStyle(502, "server_error"),
            "unavailable": ErrorStyle(503, "engine_overloaded_error"),
            "gateway_timeout": ErrorStyle(504, "server_error"),
        }
    ),
    error_code_key="type",
    new_id=_kimi_id,
)

GLM = Provider(
    name="glm",
    prefix="/glm/api/paas/v4",
    purposes=MappingProxyType(
        {
            "batch": PurposeRule(100 * MB, 1000, ContentKind.BYTES),
            # *guess*: /content of file-extract is JSON with a "content" key, like Kimi's.
            "file-extract": PurposeRule(50 * MB, 100, ContentKind.EXTRACT),
            "code-interpreter": PurposeRule(20 * MB, 100),
            "agent": PurposeRule(20 * MB, 1000),
            "voice-clone-input": PurposeRule(20 * MB),
        }
    ),
    max_files=1000,
    max_total_bytes=None,
    # *guess*: retrieve is undocumented and commented out in the official SDK, so it is absent (404).
    has_retrieve=False,
    paginated_list=True,
    file_keys=("id", "object", "bytes", "created_at", "filename", "purpose"),
    errors=MappingProxyType(
        {
            "bad_request": ErrorStyle(400, "1214"),
            # *guess*: 435 is documented for files over 100 MB; smaller per-purpose limits answer 400.
            "too_large": ErrorStyle(400, "1214"),
            "over_100mb": ErrorStyle(435, "1214"),
            "too_many": ErrorStyle(400, "1214"),
            "unauthorized": ErrorStyle(401, "1002"),
            "not_found": ErrorStyle(404, "1214"),
            "payload_too_large": ErrorStyle(413, "1214"),
            "rate_limited": ErrorStyle(429, "1302"),
            "server_error": ErrorStyle(500, "500"),
            "bad_gateway": ErrorStyle(502, "500"),
            "unavailable": ErrorStyle(503, "1305"),
            "gateway_timeout": ErrorStyle(504, "500"),
        }
    ),
    error_code_key="code",
    new_id=_glm_id,
)

PROVIDERS: Mapping[str, Provider] = MappingProxyType({p.name: p for p in (KIMI, GLM)})
