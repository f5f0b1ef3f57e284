"""Request bodies and the upload call the scenarios share.

One random buffer of the largest size is made per process and sliced per request: random so nothing
compresses or deduplicates along the way, one buffer so 150 users do not hold 150 copies.
"""

from __future__ import annotations

import math
import os
import random
import uuid
from typing import Any

__all__ = ["MAX_BYTES", "MIN_BYTES", "authorize", "pick_size", "upload"]

MIN_BYTES = 10 * 1024
#: 20 MB by the scenario's definition; the harness lowers it (env LLMFILES_LOAD_MAX_BYTES) for short tests.
MAX_BYTES = int(os.environ.get("LLMFILES_LOAD_MAX_BYTES", str(20 * 1024 * 1024)))
_BUFFER = os.urandom(MAX_BYTES)
#: The service's bearer token; `python -m harness load` passes the one it gave the service.
TOKEN_ENV = "LLMFILES_SERVICE_TOKEN"  # noqa: S105 (a variable name, not a secret)


def authorize(client: Any) -> None:
    """Send the service's token (from the environment) on every request of this user's client."""
    client.headers["Authorization"] = f"Bearer {os.environ.get(TOKEN_ENV, '')}"


def pick_size(rng: random.Random, low: int = MIN_BYTES, high: int = MAX_BYTES) -> int:
    """A size log-uniform in [low, high]: as many 10-100 KB files as 2-20 MB ones, like real traffic."""
    high = max(low, min(high, MAX_BYTES))
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _bucket(size: int) -> str:
    return "<100KB" if size < 100 * 1024 else "<1MB" if size < 1024 * 1024 else ">=1MB"


def upload(client: Any, user_id: str, size: int) -> str | None:
    """POST one file of `size` bytes as a raw body; return the stored file id, or None on failure."""
    name = f"{uuid.uuid4().hex[:12]}.txt"
    with client.post(
        f"/upload?name={name}",
        data=_BUFFER[:size],
        headers={"X-User": user_id, "Content-Type": "application/octet-stream"},
        name=f"/upload [{_bucket(size)}]",
        catch_response=True,
        context={"user": user_id},
    ) as response:
        if response.status_code != 200:
            response.failure(f"status {response.status_code}: {response.text[:120]}")
            return None
        file_id: str = response.json()["file_id"]
        return file_id
