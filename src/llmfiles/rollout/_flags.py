"""Where the rollout's flags come from, behind one small protocol.

`FlagSource.snapshot()` returns the `FlagState` in force now; the dispatcher asks on every call, so a
change anywhere takes effect on the next upload. Sources:

- `EnvFlagSource`: the environment, read once at start-up (`RolloutSettings`).
- `FileFlagSource`: a JSON or TOML file re-read when its inode, size or mtime changes. Writes replace it
  atomically, so a rollback written by one process reaches every process on the host within one call.
- `OpenFeatureFlagSource`: any OpenFeature provider (flagd, Unleash, ...), for a fleet.
- `OverridableFlagSource`: wraps another and lets the controller pin the percentage in-process at once,
  before (or without) the shared source catching up.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import structlog
from openfeature.client import OpenFeatureClient

from llmfiles._errors import ConfigError
from llmfiles.observe import atomic_write_text, move_aside
from llmfiles.rollout._settings import RolloutSettings

_log = structlog.get_logger("llmfiles.rollout")


@dataclass(frozen=True, slots=True)
class FlagState:
    """The flags in force.

    Args:
        enabled: the kill switch; False routes every call to the legacy arm.
        percent: share of keys for the async arm, 0-100.
        fallback: whether a transport error on the async arm may fall back to the legacy arm.
    """

    enabled: bool = False
    percent: float = 0.0
    fallback: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"enabled={self.enabled!r} must be true or false")
        if not isinstance(self.fallback, bool):
            raise ConfigError(f"fallback={self.fallback!r} must be true or false")
        if (
            isinstance(self.percent, bool)
            or not isinstance(self.percent, int | float)
            or not math.isfinite(self.percent)
            or not 0 <= self.percent <= 100
        ):
            raise ConfigError(f"percent={self.percent!r} must be a number within [0, 100]")

    @property
    def effective_percent(self) -> float:
        """The percentage actually routed to the async arm: 0 when the kill switch is off."""
        return float(self.percent) if self.enabled else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON/TOML form a flag file holds; `from_mapping` reads it back."""
        return {"enabled": self.enabled, "percent": float(self.percent), "fallback": self.fallback}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str) -> FlagState:
        """Build from parsed JSON/TOML; unknown keys are ignored, missing ones take the defaults.

        Raises:
            ConfigError: a value has the wrong type or range; the message names `origin`.
        """
        known = {name: data[name] for name in ("enabled", "percent", "fallback") if name in data}
        try:
            return cls(**known)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None


@runtime_checkable
class FlagSource(Protocol):
    """Anything that can say which flags are in force right now."""

    def snapshot(self) -> FlagState:
        """The flags in force now; called on every dispatched upload, so it should be cheap."""
        ...


@runtime_checkable
class WritableFlagSource(FlagSource, Protocol):
    """A flag source the controller can write a rollback or promotion into."""

    def write(self, state: FlagState) -> None:
        """Make `state` the flags every later `snapshot` returns (this process and any sharing the source)."""
        ...

    def roll_back(
        self, *, reason: str | None = None, evidence: Mapping[str, Any] | None = None
    ) -> str | None:
        """Set the percentage to 0 whatever the source holds now: the kill switch.

        `reason` and `evidence` (the verdict) go into the source's own history where it keeps one (a
        fleet's database); a file source has none and leaves them to the controller's state.

        Content that cannot be read is set aside (never overwritten) and replaced by the flags off;
        returns where it went, None when there was nothing to set aside. Raises `OSError` (or an
        `LLMFilesError`) only when nothing could be written.
        """
        ...


class EnvFlagSource:
    """Flags from `RolloutSettings` (the environment), fixed for the life of the process."""

    def __init__(self, settings: RolloutSettings) -> None:
        self._state = FlagState(
            enabled=settings.enabled, percent=settings.rollout_percent, fallback=settings.fallback
        )

    def snapshot(self) -> FlagState:
        return self._state


class FileFlagSource:
    """Flags from a JSON (``.json``) or TOML (``.toml``) file shared by the processes of a host.

    Each `snapshot` costs one ``stat``; the file is parsed again only when its inode, size or mtime
    changed. A missing file means `default`. A file that is invalid at construction raises
    `ConfigError` (fail at start-up); one that turns invalid later is logged and the last good state is
    kept, so a typo in an edit cannot take uploads down.

    Args:
        path: the flag file.
        default: the state while the file does not exist.
        strict: False starts on `default` (and logs) when the file is invalid, instead of raising: for
            a rollback, which must write over a broken file rather than stop at it.
        clock: wall-clock seconds, for the name a broken file is set aside under.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        default: FlagState | None = None,
        strict: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        if self.path.suffix not in (".json", ".toml"):
            raise ConfigError(f"flag_file={str(self.path)!r} must end in .json or .toml")
        self._default = default if default is not None else FlagState()
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._state = self._default
        with self._lock:
            self._refresh(strict=strict)

    def snapshot(self) -> FlagState:
        """The file's flags, re-read when it changed; a broken edit keeps the last good state (and logs)."""
        with self._lock:
            self._refresh(strict=False)
            return self._state

    def write(self, state: FlagState) -> None:
        """Replace the file atomically with `state`; every reader sees it on its next `snapshot`."""
        with self._lock:
            atomic_write_text(self.path, self._render(state))
            self._refresh(strict=True)

    def roll_back(
        self, *, reason: str | None = None, evidence: Mapping[str, Any] | None = None
    ) -> str | None:
        """Percentage 0 in the file, whatever it holds now (see `WritableFlagSource.roll_back`).

        A readable file keeps its other flags; a missing one is created with the flags off; one that
        cannot be read or parsed is renamed to ``<name>.corrupt-<UTC time>`` and replaced by the flags
        off. Raises `OSError` when the directory refuses the write (or the rename).
        """
        with self._lock:
            moved: Path | None = None
            try:
                current = self._parse(self._read())
            except FileNotFoundError:
                current = FlagState()
            except ConfigError as exc:
                moved = move_aside(self.path, clock=self._clock)
                _log.error(
                    "flag_file_invalid_set_aside", path=str(self.path), moved_to=str(moved), error=str(exc)
                )
                current = FlagState()
            atomic_write_text(self.path, self._render(replace(current, percent=0.0)))
            self._refresh(strict=True)
        return None if moved is None else str(moved)

    def _render(self, state: FlagState) -> str:
        if self.path.suffix == ".json":
            return json.dumps(state.to_dict(), indent=2) + "\n"
        # tomllib only reads; three scalars do not justify a TOML-writing dependency.
        return "".join(f"{name} = {json.dumps(value)}\n" for name, value in state.to_dict().items())

    def _refresh(self, *, strict: bool) -> None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._signature, self._state = None, self._default
            return
        except OSError as exc:  # a parent that is a file, a directory we may not search
            if strict:
                raise ConfigError(
                    f"flag_file={str(self.path)!r} cannot be read ({exc}); fix the path"
                ) from exc
            _log.warning("flag_file_invalid_kept_last_state", path=str(self.path), error=str(exc))
            return
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        if signature == self._signature:
            return
        try:
            state = self._parse(self._read())
        except ConfigError as exc:
            if strict:
                raise
            _log.warning("flag_file_invalid_kept_last_state", path=str(self.path), error=str(exc))
        else:
            self._state = state
        self._signature = signature

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise ConfigError(
                f"flag_file={str(self.path)!r} cannot be read ({exc}); fix or rewrite it"
            ) from exc

    def _parse(self, raw: bytes) -> FlagState:
        origin = f"flag_file={str(self.path)!r}"
        try:
            data = json.loads(raw) if self.path.suffix == ".json" else tomllib.loads(raw.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{origin} cannot be parsed ({exc}); fix or rewrite it") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{origin} must hold an object with enabled, percent, fallback")
        return FlagState.from_mapping(data, origin=origin)


class OpenFeatureFlagSource:
    """Flags from an OpenFeature client: a percentage, a kill switch and the fallback switch.

    Each `snapshot` evaluates three flags with no evaluation context: the percentage is global, and
    bucketing stays ours so it is sticky and identical whatever provider serves the number. A value the
    provider cannot give (missing flag, wrong type, out of range) falls back to `default`'s, and the
    reason is logged.

    Args:
        client: from ``openfeature.api.get_client()``, after ``api.set_provider(...)``.
        percent_flag: float flag, 0-100 (OpenFeature types are strict: serve ``25.0``, not ``25``).
        enabled_flag: boolean kill switch.
        fallback_flag: boolean.
        default: values used when an evaluation fails.
    """

    def __init__(
        self,
        client: OpenFeatureClient,
        *,
        percent_flag: str = "llmfiles-async-upload-percent",
        enabled_flag: str = "llmfiles-async-upload-enabled",
        fallback_flag: str = "llmfiles-async-upload-fallback",
        default: FlagState | None = None,
    ) -> None:
        self._client = client
        self._flags = (percent_flag, enabled_flag, fallback_flag)
        self._default = default if default is not None else FlagState()

    def snapshot(self) -> FlagState:
        percent_flag, enabled_flag, fallback_flag = self._flags
        percent = self._client.get_float_value(percent_flag, self._default.percent)
        enabled = self._client.get_boolean_value(enabled_flag, self._default.enabled)
        fallback = self._client.get_boolean_value(fallback_flag, self._default.fallback)
        try:
            return FlagState(enabled=enabled, percent=percent, fallback=fallback)
        except ConfigError as exc:
            _log.warning("openfeature_flag_invalid_using_default", flag=percent_flag, error=str(exc))
            return replace(self._default, enabled=enabled, fallback=fallback)


class OverridableFlagSource:
    """Wraps a source so the controller can cut the percentage in this process at once.

    A pin holds until the wrapped source's state changes from what it was when pinned: the rollback
    reaching the shared file, or an operator (or the CLI, in another process) writing a new state. From
    then on the wrapped source rules again. A source that never changes (the environment) stays pinned
    for the life of the process, which is what a rollback should do there.
    """

    def __init__(self, inner: FlagSource) -> None:
        self.inner = inner
        self._pin: tuple[float, FlagState] | None = None
        self._lock = threading.Lock()

    @property
    def pinned(self) -> float | None:
        """The pinned percentage, or None."""
        pin = self._pin
        return None if pin is None else pin[0]

    def pin(self, percent: float) -> None:
        """Route at most `percent` to the async arm in this process, starting with the next call."""
        FlagState(percent=percent)  # validates the range with the usual message
        state = self.inner.snapshot()
        with self._lock:
            self._pin = (percent, state)

    def unpin(self) -> None:
        """Let the wrapped source rule again."""
        with self._lock:
            self._pin = None

    def snapshot(self) -> FlagState:
        state = self.inner.snapshot()
        with self._lock:
            if self._pin is None:
                return state
            percent, pinned_over = self._pin
            if state != pinned_over:
                self._pin = None
                return state
            return replace(state, percent=min(percent, state.percent))
