"""Chaos rules as data: what they match, when they fire, what they do; and the shipped profiles.

A rule reads like its documentation::

    [[rules]]
    match = { provider = "kimi", operation = "upload", headers = { "x-llmfiles-arm" = "async" } }
    trigger = { probability = 0.05 }
    effect = { kind = "error", status = 429, retry_after = 2 }

Rules are validated once, at the edge (a profile file, ``PUT /_chaos``), with pydantic; its errors
quote the key and the value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Operation = Literal["upload", "list", "retrieve", "content", "delete"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Model):
    """Which requests a rule considers; a missing key matches anything.

    `headers` maps header names (any case) to the exact value each must carry: a client that labels its
    requests (``default_headers``) gets its own chaos while others on the same mock do not.
    """

    provider: Literal["kimi", "glm"] | None = None
    operation: Operation | None = None
    method: Literal["GET", "POST", "DELETE"] | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _lower_names(cls, headers: dict[str, str]) -> dict[str, str]:
        # HTTP header names are case-insensitive; the wire hands them over lower-cased.
        return {name.lower(): value for name, value in headers.items()}

    def matches(
        self, provider: str, operation: str, method: str, headers: Mapping[str, str] | None = None
    ) -> bool:
        """Whether a request matches; `headers` are the request's, names lower-cased."""
        sent = headers or {}
        return (
            (self.provider is None or self.provider == provider)
            and (self.operation is None or self.operation == operation)
            and (self.method is None or self.method == method)
            and all(sent.get(name) == value for name, value in self.headers.items())
        )


class Trigger(_Model):
    """When a matching request is hit: with a probability, the first N matches, or every k-th match.

    Exactly one of the three; with none given the rule fires on every match.
    """

    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    first: int | None = Field(default=None, ge=0)
    every: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        given = [k for k in ("probability", "first", "every") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"trigger takes one of probability, first, every; got {given!r}")
        return self

    def fires(self, nth: int, draw: float) -> bool:
        """Whether the `nth` matching request (1-based), with uniform `draw` in [0, 1), is hit."""
        if self.first is not None:
            return nth <= self.first
        if self.every is not None:
            return nth % self.every == 0
        if self.probability is not None:
            return draw < self.probability
        return True


class Latency(_Model):
    """Delay before the response: fixed `seconds`, uniform in [`low`, `high`], or lognormal with
    `median` and `sigma`, capped at `cap` seconds."""

    kind: Literal["latency"] = "latency"
    distribution: Literal["fixed", "uniform", "lognormal"] = "fixed"
    seconds: float = Field(default=0.0, ge=0.0)
    low: float = Field(default=0.0, ge=0.0)
    high: float = Field(default=0.0, ge=0.0)
    median: float = Field(default=0.0, ge=0.0)
    sigma: float = Field(default=0.0, ge=0.0)
    cap: float = Field(default=60.0, gt=0.0)

    @model_validator(mode="after")
    def _consistent(self) -> Latency:
        if self.distribution == "uniform" and self.high < self.low:
            raise ValueError(f"uniform latency needs low <= high; got low={self.low!r}, high={self.high!r}")
        if self.distribution == "lognormal" and self.median <= 0:
            raise ValueError(f"lognormal latency needs median > 0; got median={self.median!r}")
        return self


class Error(_Model):
    """An error status with the provider's own error body. ``Retry-After`` is sent when `retry_after`
    is set, and always on a 429 (1 s unless set)."""

    kind: Literal["error"] = "error"
    status: Literal[401, 413, 429, 500, 502, 503, 504]
    retry_after: int | None = Field(default=None, ge=0)


class Reset(_Model):
    """A TCP reset (RST): after reading the whole request, or after `after_request_bytes` of its body."""

    kind: Literal["reset"] = "reset"
    after_request_bytes: int | None = Field(default=None, ge=0)


class Partial(_Model):
    """The full Content-Length is declared, `fraction` of the body is sent, then the connection closes."""

    kind: Literal["partial"] = "partial"
    fraction: float = Field(default=0.5, ge=0.0, lt=1.0)


class Malformed(_Model):
    """Status 200 with a body that is not valid JSON."""

    kind: Literal["malformed"] = "malformed"


class Slow(_Model):
    """Upload bodies are read, and response bodies sent, at most `bytes_per_second`."""

    kind: Literal["slow"] = "slow"
    bytes_per_second: int = Field(ge=1)


class Hang(_Model):
    """No response at all, until the client gives up (or the server stops)."""

    kind: Literal["hang"] = "hang"


class LostResponse(_Model):
    """The request is carried out (an upload is stored and counted), then the connection is reset
    instead of answering."""

    kind: Literal["lost_response"] = "lost_response"


class StoredThenError(_Model):
    """The request is carried out (an upload is stored and counted), then an error status is answered
    instead of the result: a gateway in front of the provider that gave up after the origin had stored
    the file. A client must look before sending again."""

    kind: Literal["stored_then_error"] = "stored_then_error"
    status: Literal[500, 502, 503, 504] = 502


Effect = Annotated[
    Latency | Error | Reset | Partial | Malformed | Slow | Hang | LostResponse | StoredThenError,
    Field(discriminator="kind"),
]


class Rule(_Model):
    """One chaos rule: match, trigger, effect."""

    match: Match = Match()
    trigger: Trigger = Trigger()
    effect: Effect


class Profile(_Model):
    """A named list of rules, as shipped in ``profiles/*.toml``."""

    description: str = ""
    rules: tuple[Rule, ...] = ()


class ProfileError(ValueError):
    """A profile or rule list that cannot be used; the message says which key and value, and what to do."""


def parse_rules(raw: Any) -> tuple[Rule, ...]:
    """Validate a JSON/TOML list of rules."""
    try:
        return Profile.model_validate({"rules": raw}).rules
    except ValidationError as exc:
        raise ProfileError(f"rules are invalid: {_describe(exc)}") from exc


def profile_names() -> list[str]:
    """Names of the profiles shipped with the package."""
    folder = resources.files("mock_provider").joinpath("profiles")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``calm``, ``realistic`` ...) or a TOML file by path."""
    text, origin = _profile_text(name_or_path)
    try:
        return Profile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile={origin!r} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise ProfileError(f"profile={origin!r} is invalid: {_describe(exc)}") from exc


def _profile_text(name_or_path: str | Path) -> tuple[str, str]:
    name = str(name_or_path)
    if name in profile_names():
        folder = resources.files("mock_provider").joinpath("profiles")
        return folder.joinpath(f"{name}.toml").read_text(encoding="utf-8"), name
    path = Path(name)
    if path.suffix == ".toml" and path.is_file():
        return path.read_text(encoding="utf-8"), name
    raise ProfileError(
        f"profile={name!r} is neither a shipped profile nor a .toml file; "
        f"use one of {profile_names()!r} or a path to a TOML file"
    )


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}={err.get('input')!r}: {err['msg']}" for err in exc.errors()
    )
