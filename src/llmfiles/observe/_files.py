"""Atomic replacement, and setting a broken file aside, for files other processes read while they change.

A reader (another process's `FileFlagSource`, the CLI reading the controller's state) must see the old
content or the new one, never half of each: write a sibling temporary file, fsync it, then `os.replace`
it over the target (atomic on POSIX and Windows), then fsync the directory so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers never see a partial file; no temporary is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Windows cannot open a directory for fsync; the rename is durable enough there.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_aside(path: Path, *, clock: Callable[[], float]) -> Path:
    """Rename `path` to ``<name>.corrupt-<UTC time>`` beside it, so a fresh file can take its place.

    Used when a file cannot be read and something must be written over it now (a rollback): the broken
    content is kept for the post-mortem, never overwritten. A name already taken gets ``-1``, ``-2``...

    Raises:
        OSError: the file could not be renamed (the caller must say so: nothing was written).
    """
    stamp = dt.datetime.fromtimestamp(clock(), tz=dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    suffix = 0
    while target.exists():
        suffix += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{suffix}")
    os.replace(path, target)
    return target
