"""The parts of llmfiles a case measures, as one value the case is handed: `REAL` unless told otherwise.

A claim only means something if its measurement fails when the part it names is broken. The self-check
(`harness.selfcheck`) proves that by handing a case a `Seams` with one part swapped for a broken one (a
client subclass, a bucketing function, a dispatcher without reconcile) and requiring a FAIL. The library
on disk is never touched: every swap happens here, at the point where the case builds what it measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import Recorder
from llmfiles.rollout import JudgeVerdict, RolloutController, in_rollout, latency_verdict
from llmfiles.transfer import AsyncFilesClient

__all__ = ["REAL", "InRollout", "LatencyVerdict", "Seams", "resolve"]

InRollout = Callable[[str, float, str], bool]
#: ``latency_verdict(control, candidate, *, tolerance, confidence) -> JudgeVerdict``
LatencyVerdict = Callable[..., JudgeVerdict]


@dataclass(frozen=True, slots=True)
class Seams:
    """What a case builds its measurement from.

    Args:
        client: the async arm's client class (built with the same arguments as `AsyncFilesClient`).
        legacy: the legacy arm's client class.
        bucket: ``"module:function"`` of the bucketing function (``bucket(key, *, salt) -> int``); a
            name, not the function, because stickiness is checked in fresh interpreters that import it.
        in_rollout: the percentage check (``in_rollout(key, percent, salt) -> bool``).
        dispatcher_reconcile: whether the dispatcher searches the listing before it falls back.
        fallback: the flag that lets a transport error on the async arm fall back to the legacy arm.
        recorder: the recorder class the rollout's bookkeeping feeds.
        controller: the rollout controller class.
        latency_verdict: the statistical judge's latency decision the controller's checks use.
        memory_upload: the memory probe's client that plays the async arm's upload.
        memory_download: the memory probe's client that plays the async arm's download.
    """

    client: type[AsyncFilesClient] = AsyncFilesClient
    legacy: type[LegacyFilesClient] = LegacyFilesClient
    bucket: str = "llmfiles.rollout:bucket"
    in_rollout: InRollout = in_rollout
    dispatcher_reconcile: bool = True
    fallback: bool = True
    recorder: type[Recorder] = Recorder
    controller: type[RolloutController] = RolloutController
    latency_verdict: LatencyVerdict = latency_verdict
    memory_upload: str = "async"
    memory_download: str = "async"


#: The shipped implementations: what the bench measures.
REAL = Seams()


def resolve(name: str) -> object:
    """The object a ``"module:attribute"`` name points to (what `Seams.bucket` holds)."""
    import importlib

    module, _, attribute = name.partition(":")
    if not module or not attribute:
        raise ValueError(f"name={name!r} must be 'module:attribute'")
    return getattr(importlib.import_module(module), attribute)
