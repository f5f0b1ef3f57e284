"""Rollout settings from the environment, validated once at start-up.

Every setting reads ``LLMFILES_<NAME>``; the five settings that existed before llmfiles also read their old
names (``ASYNC_UPLOAD_ENABLED``, ``ASYNC_UPLOAD_ROLLOUT``, ``ASYNC_UPLOAD_FALLBACK``,
``ASYNC_UPLOAD_MAX_RETRIES``, ``ASYNC_UPLOAD_TIMEOUT``) so deployments keep working unchanged; when both
are set the ``LLMFILES_`` name wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmfiles._errors import ConfigError
from llmfiles.rollout._gates import DEFAULT_GATES, OFF
from llmfiles.transfer import TransferSettings

_TRANSFER_DEFAULTS = TransferSettings()
"""The transfer client's defaults: the one source of the retries, timeout and concurrency defaults."""


def _names(field: str, old: str) -> AliasChoices:
    # The field's own name is not an alias: it would make a bare ENABLED variable count. Keyword
    # arguments by field name still work through validate_by_name.
    return AliasChoices(f"LLMFILES_{field.upper()}", old)


_CONFIG = SettingsConfigDict(
    env_prefix="LLMFILES_", validate_by_name=True, validate_by_alias=True, extra="ignore", frozen=True
)


class _TransferVariables(BaseSettings):
    """The three settings of the transfer client, alone: what `load_transfer_settings` reads."""

    model_config = _CONFIG

    max_retries: int = Field(
        default=_TRANSFER_DEFAULTS.retries,
        ge=0,
        le=20,
        validation_alias=_names("max_retries", "ASYNC_UPLOAD_MAX_RETRIES"),
    )
    timeout_s: float = Field(
        default=_TRANSFER_DEFAULTS.read_timeout,
        gt=0,
        validation_alias=_names("timeout_s", "ASYNC_UPLOAD_TIMEOUT"),
    )
    max_concurrency: int = Field(default=_TRANSFER_DEFAULTS.max_concurrency, ge=1, le=1024)

    def transfer_settings(self) -> TransferSettings:
        """The async arm's client settings from these flags, so the flags an operator sets take effect.

        `max_retries` becomes the client's retries and `max_concurrency` its limit. `timeout_s` bounds
        each wait on the provider, the read and the write phase, as the old ``ASYNC_UPLOAD_TIMEOUT`` did
        for the old client; connect and pool timeouts keep their defaults. Adjust further with
        `dataclasses.replace`.
        """
        return TransferSettings(
            retries=self.max_retries,
            read_timeout=self.timeout_s,
            write_timeout=self.timeout_s,
            max_concurrency=self.max_concurrency,
        )


class RolloutSettings(_TransferVariables):
    """What the rollout reads from the environment. Build it with `load_settings` to get a `ConfigError`.

    Args:
        enabled: the kill switch; False sends every call to the legacy arm whatever the percentage.
        rollout_percent: share of keys sent to the async arm, 0-100 in steps of 0.01 (``"10%"`` accepted).
        fallback: fall back to the legacy arm on transport errors.
        max_retries: retries of the async arm per upload (for the transfer client).
        timeout_s: per-upload timeout in seconds (for the transfer client).
        max_concurrency: concurrent uploads per provider (for the transfer client).
        stage: the stage this process starts in when there is no state file yet: ``"off"`` or a stage
            of the default table.
        flag_file: a JSON or TOML flag file shared by the processes of a host (None: environment only).
            It must exist: a path with a typo would otherwise leave every process on the default
            flags, deaf to every rollback written to the right file.
        state_file: where the controller keeps the stage state.
        salt: the flag's name in the bucketing hash; change it only to reshuffle every key.
        check_interval_s: seconds between the controller's checks.
        rollback_threshold: consecutive failed checks before an automatic rollback.
        window_s: the recorder's sliding window for promotion verdicts.
    """

    model_config = _CONFIG

    enabled: bool = Field(default=False, validation_alias=_names("enabled", "ASYNC_UPLOAD_ENABLED"))
    rollout_percent: float = Field(
        default=0.0, ge=0, le=100, validation_alias=_names("rollout_percent", "ASYNC_UPLOAD_ROLLOUT")
    )
    fallback: bool = Field(default=True, validation_alias=_names("fallback", "ASYNC_UPLOAD_FALLBACK"))
    stage: str = "off"
    flag_file: Path | None = None
    state_file: Path = Path(".llmfiles/rollout-state.json")
    salt: str = Field(default="llmfiles.async_upload", min_length=1)
    check_interval_s: float = Field(default=10.0, gt=0)
    rollback_threshold: int = Field(default=3, ge=1)
    window_s: float = Field(default=300.0, gt=0)

    @field_validator("rollout_percent", mode="before")
    @classmethod
    def _strip_percent_sign(cls, value: Any) -> Any:
        # The old ASYNC_UPLOAD_ROLLOUT was often written "10%".
        if isinstance(value, str):
            return value.strip().removesuffix("%")
        return value

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        known = [OFF, *(stage.name for stage in DEFAULT_GATES.stages)]
        if value not in known:
            raise ValueError(f"unknown stage; use one of: {', '.join(known)}")
        return value

    @field_validator("flag_file")
    @classmethod
    def _existing_flag_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(
                "no such flag file; create it (`llmfiles rollout promote --flags PATH` does) or unset it"
            )
        return value

    @property
    def detection_bound_s(self) -> float:
        """Longest time from a brownout to the automatic rollback: interval x (threshold + 1).

        One interval for the brownout to fill a check's window, then `threshold` failing checks; see
        `RolloutController`.
        """
        return self.check_interval_s * (self.rollback_threshold + 1)


def load_settings(**overrides: Any) -> RolloutSettings:
    """Read `RolloutSettings` from the environment (and `overrides`), failing at once on a bad value.

    Raises:
        ConfigError: one line per invalid setting, quoting the key and the value it was given.
    """
    try:
        return RolloutSettings(**overrides)
    except ValidationError as exc:
        raise _config_error("rollout", exc) from None


def load_transfer_settings() -> TransferSettings:
    """The transfer client's settings from ``LLMFILES_MAX_RETRIES``, ``LLMFILES_TIMEOUT_S`` and
    ``LLMFILES_MAX_CONCURRENCY`` (or ``ASYNC_UPLOAD_MAX_RETRIES``, ``ASYNC_UPLOAD_TIMEOUT``) alone.

    For a process that moves files without taking part in the rollout (the ``llmfiles upload`` command, the
    reference service with its own flags): the rollout's own settings, such as a flag file that must exist,
    are not read, so they can never stop a transfer. Unset variables give `TransferSettings`' defaults.

    Raises:
        ConfigError: one line per invalid setting, quoting the variable and the value it was given.
    """
    try:
        return _TransferVariables().transfer_settings()
    except ValidationError as exc:
        raise _config_error("transfer", exc) from None


def _config_error(kind: str, exc: ValidationError) -> ConfigError:
    problems = [f"{_key_of(error['loc'])}={error.get('input')!r}: {error['msg']}" for error in exc.errors()]
    return ConfigError(f"invalid {kind} settings; fix these and restart: " + "; ".join(problems))


def _key_of(loc: tuple[int | str, ...]) -> str:
    """The name the operator actually set: the environment variable in use, else the field name."""
    name = str(loc[0]) if loc else "?"
    for field, info in RolloutSettings.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        candidates = [*choices, f"LLMFILES_{field.upper()}"]
        if name == field or name in candidates:
            set_names = [c for c in candidates if c.isupper() and c.upper() in _upper_environ()]
            return set_names[0] if set_names else field
    return name


def _upper_environ() -> set[str]:
    return {key.upper() for key in os.environ}
