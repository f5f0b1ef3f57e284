"""One JSON line per request, for the load run's per-phase figures and its timeline.

Locust's CSV holds aggregates only; the harness needs each request's start (to put it in a control or
candidate phase, and to bin the timeline by start), its latency, whether it failed and with which HTTP
status, and the user (to tell which arm served it). Each Locust process writes its own file under
``$LLMFILES_LOAD_SAMPLES``; without that variable nothing is written.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from locust import events

from loadtests import SAMPLES_ENV

_folder = os.environ.get(SAMPLES_ENV)
_out: TextIO | None = None
_closed = False


def _record(
    response_time: float, exception: BaseException | None, context: dict[str, Any], **kwargs: Any
) -> None:
    global _out
    if _folder is None or _closed:
        return  # not asked for, or the run is over (calls cut off by the stop are not samples)
    if _out is None:
        # Line-buffered: the harness starts its phases once the first line is on disk.
        _out = (Path(_folder) / f"samples-{os.getpid()}.jsonl").open("a", encoding="utf-8", buffering=1)
    start = kwargs.get("start_time") or time.time() - response_time / 1000
    # The status tells the service's own failures from a provider's refusal an arm relayed (502).
    status = getattr(kwargs.get("response"), "status_code", None)
    row = {
        "t": start,
        "ms": response_time,
        "ok": exception is None,
        "user": context.get("user"),
        "status": status,
    }
    _out.write(json.dumps(row) + "\n")


def _close(**_kwargs: Any) -> None:
    global _closed
    _closed = True
    if _out is not None:
        _out.close()


# Locust's EventHook is untyped.
events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_close)  # type: ignore[no-untyped-call]
