"""The JSONL event log and its CSV export.

One JSON object per line, appended with a single ``write`` on a file opened in append mode, so lines from
concurrent writers (threads, or processes sharing the file) do not interleave in practice.

fsync policy: every line is flushed to the operating system at once, so a crash of the process loses
nothing; `fsync=True` also forces every line to disk (survives power loss, costs a disk sync per call);
`close()` always fsyncs. A line torn by a power cut can only be the last one, and `read_events` skips
exactly that case.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from llmfiles._errors import ConfigError
from llmfiles.observe._event import EVENT_FIELDS, Event
from llmfiles.observe._files import atomic_write_text


class EventLog:
    """Append-only JSONL log of `Event`s; an event sink (`record`) for the dispatcher.

    Args:
        path: the log file; created with its directory if missing, appended to if present.
        fsync: force each line to disk as well as to the OS (see the module docstring).
    """

    def __init__(self, path: Path | str, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._handle: io.TextIOWrapper | None = self.path.open("a", encoding="utf-8")

    def record(self, event: Event) -> None:
        """Append one event as one line."""
        line = json.dumps(event.to_dict(), separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock:
            if self._handle is None:
                raise ConfigError(f"path={str(self.path)!r}: the event log is closed; open a new EventLog")
            self._handle.write(line)
            self._handle.flush()
            if self._fsync:
                os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Flush and fsync the log, then close it; later `record` calls raise."""
        with self._lock:
            if self._handle is None:
                return
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_events(path: Path | str) -> Iterator[Event]:
    """Events from a JSONL log, in file order.

    Raises:
        ConfigError: a line other than a torn last one is not an event, or holds a time or duration
            that is not a finite number (the message names the line).
    """
    source = Path(path)
    try:
        handle = source.open(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"events={str(source)!r} does not exist; pass the path of an EventLog file"
        ) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            # Only the last line can lack its newline: it was torn by a crash mid-write.
            if not line.endswith("\n") or not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"events={str(source)!r} line {number} is not JSON: {exc.msg}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"events={str(source)!r} line {number} is not a JSON object")
            try:
                event = Event.from_dict(data)
            except ConfigError as exc:
                raise ConfigError(f"events={str(source)!r} line {number}: {exc}") from exc
            yield event


def export_csv(events: Iterable[Event], dest: Path | str) -> int:
    """Write events as CSV with the columns of `EVENT_FIELDS`, in that order; returns the row count.

    The file is replaced atomically: a reader sees the previous export or the whole new one.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EVENT_FIELDS, lineterminator="\n")
    writer.writeheader()
    rows = 0
    for event in events:
        writer.writerow(event.to_dict())
        rows += 1
    atomic_write_text(Path(dest), buffer.getvalue())
    return rows
