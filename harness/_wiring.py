"""llmfiles wired the way a production service wires it: both arms, a dispatcher, a recorder.

The bench's rollout cases and the reference service build their dispatcher here, so what the bench
measures is the same assembly the load runs exercise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import Recorder
from llmfiles.rollout import Dispatcher, EventSink, FlagSource, FlagState
from llmfiles.transfer import AsyncFilesClient, UploadResult

__all__ = ["StaticFlags", "make_dispatcher"]


class StaticFlags:
    """A flag source that always answers the same state: the bench sets the stage, not a file."""

    def __init__(self, state: FlagState) -> None:
        self.state = state

    def snapshot(self) -> FlagState:
        return self.state


def make_dispatcher(
    flags: FlagSource,
    *,
    client: AsyncFilesClient,
    legacy: LegacyFilesClient,
    recorder: Recorder | None,
    sinks: Sequence[EventSink] = (),
    stage: str | Callable[[], str] = "bench",
    legacy_in_thread: bool = True,
    **options: Any,
) -> Dispatcher[UploadResult]:
    """A dispatcher over `client` (async arm) and `legacy`, reconciling before every fallback."""
    return Dispatcher(
        flags,
        async_arm=client.upload,
        legacy_arm=legacy.upload,
        recorder=recorder,
        sinks=sinks,
        provider=client.provider.name,
        stage=stage,
        reconcile=client.find_uploaded,
        adopt=UploadResult.adopted,
        legacy_in_thread=legacy_in_thread,
        **options,
    )
