"""One way to build an `Event` for every test that needs one, so a new field is added in one place."""

import dataclasses
from typing import Any

from llmfiles.observe import Event, hash_key

BASE_EVENT = Event(
    ts=1_700_000_000.25,
    flag="llmfiles.async_upload",
    arm="async",
    outcome="success",
    duration_s=0.125,
    bytes=1024,
    error_type=None,
    provider="kimi",
    stage="1%",
    key_hash=hash_key("user-1", salt="llmfiles.async_upload"),
)


def make_event(**changes: Any) -> Event:
    """A successful async Kimi upload of 1024 bytes; keyword arguments replace any `Event` field."""
    return dataclasses.replace(BASE_EVENT, **changes)
