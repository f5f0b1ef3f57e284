"""Atomic replacement under injected faults, and setting a broken file aside."""

import errno
import os
from pathlib import Path

import pytest

from llmfiles.observe import atomic_write_text, move_aside


def test_a_write_that_fails_half_way_leaves_the_old_content_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk fills up as the new content is synced: a reader must still find the old file whole.
    target = tmp_path / "flags.json"
    target.write_text('{"percent": 50}\n')

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, '{"percent": 0}\n')
    assert target.read_text() == '{"percent": 50}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["flags.json"]


def test_the_target_is_replaced_never_opened_for_writing(tmp_path: Path) -> None:
    # A reader holding the old file keeps reading the old content: the inode was swapped, not rewritten.
    target = tmp_path / "state.json"
    target.write_text("old")
    with target.open() as reader:
        atomic_write_text(target, "new content")
        assert reader.read() == "old"
    assert target.read_text() == "new content"


def test_move_aside_keeps_the_content_under_a_timestamped_name(tmp_path: Path) -> None:
    broken = tmp_path / "state.json"
    names = []
    for content in ("{trunc", "{again"):
        broken.write_text(content)
        names.append(move_aside(broken, clock=lambda: 1_800_000_000.5))
    assert [p.name for p in names] == [
        "state.json.corrupt-20270115T080000.500000Z",
        "state.json.corrupt-20270115T080000.500000Z-1",
    ]
    assert [p.read_text() for p in names] == ["{trunc", "{again"]
    assert not broken.exists()
