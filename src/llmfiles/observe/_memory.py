"""Process memory against the stage's baseline, for the "memory spike > 20 %" rollback trigger."""

from __future__ import annotations

from collections.abc import Callable

import psutil

from llmfiles._errors import ConfigError


def process_rss() -> int:
    """Resident set size of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


class MemorySampler:
    """Samples RSS and reports its growth over a baseline taken when the stage began.

    RSS, not the Python heap: the trigger is about the host running out of memory, whatever allocated
    it (buffers in C, threads' stacks, the legacy arm reading files whole).

    Args:
        rss: the sampling function, injectable so tests can drive it.
        baseline_bytes: the stage's baseline; None until `reset_baseline` or the first `growth`.
    """

    def __init__(self, *, rss: Callable[[], int] = process_rss, baseline_bytes: int | None = None) -> None:
        if baseline_bytes is not None and baseline_bytes <= 0:
            raise ConfigError(f"baseline_bytes={baseline_bytes!r} must be > 0")
        self._rss = rss
        self.baseline_bytes = baseline_bytes
        self.peak_bytes = 0

    def sample(self) -> int:
        """Current RSS in bytes; also tracks the peak seen."""
        value = self._rss()
        self.peak_bytes = max(self.peak_bytes, value)
        return value

    def reset_baseline(self) -> int:
        """Take the current RSS as the stage's baseline (call when a stage begins) and return it."""
        self.baseline_bytes = self.sample()
        self.peak_bytes = self.baseline_bytes
        return self.baseline_bytes

    def growth(self) -> float:
        """Current RSS over the baseline, minus one (0.25 means 25 % above); takes the baseline if unset."""
        current = self.sample()
        if self.baseline_bytes is None:
            self.baseline_bytes = current
        return current / self.baseline_bytes - 1
