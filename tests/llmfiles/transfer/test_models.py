"""UploadResult.adopted: the one way a reconciled provider file becomes the caller's result."""

import hashlib
from pathlib import Path

import pytest

from llmfiles import ConfigError, FileObject, UploadResult


def found(size: int) -> FileObject:
    return FileObject(id="f1", bytes=size, created_at=1, filename="doc.txt", purpose="batch", status="ok")


def test_adopted_hashes_the_local_file_and_marks_the_result_reconciled(tmp_path: Path) -> None:
    path = tmp_path / "doc.txt"
    data = bytes(range(256)) * 5000  # larger than one read, so the chunked hash is exercised
    path.write_bytes(data)
    result = UploadResult.adopted(found(len(data)), path)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (result.size, result.attempts, result.reconciled, result.file.id) == (len(data), 1, True, "f1")


def test_adopted_names_an_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.txt"):
        UploadResult.adopted(found(1), tmp_path / "missing.txt")
