"""UploadResult.adopted: the one way a reconciled provider file becomes the caller's result."""

import hashlib
from pathlib import Path

import pytest

from llmfiles import ConfigError, FileObject, Obtained, UploadResult
from llmfiles.transfer import FoundUpload


def found(size: int, obtained: Obtained = Obtained.RECONCILED_UNVERIFIED) -> FoundUpload:
    file = FileObject(id="f1", bytes=size, created_at=1, filename="doc.txt", purpose="batch", status="ok")
    return FoundUpload(file=file, obtained=obtained)


def test_adopted_hashes_the_local_file_and_marks_the_result_reconciled(tmp_path: Path) -> None:
    path = tmp_path / "doc.txt"
    data = bytes(range(256)) * 5000  # larger than one read, so the chunked hash is exercised
    path.write_bytes(data)
    result = UploadResult.adopted(found(len(data)), path)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (result.size, result.attempts, result.reconciled, result.file.id) == (len(data), 1, True, "f1")
    assert (result.obtained, result.verified) == (Obtained.RECONCILED_UNVERIFIED, False)


@pytest.mark.parametrize("obtained", [Obtained.RECONCILED_VERIFIED, Obtained.RECONCILED_UNVERIFIED])
def test_adopted_takes_the_label_from_what_was_proven_and_the_digest_it_is_given(
    tmp_path: Path, obtained: Obtained
) -> None:
    # The path does not exist: with the digest given, adopting must not read the file a second time.
    result = UploadResult.adopted(found(7, obtained), tmp_path / "gone.txt", sha256="ab" * 32)
    assert (result.sha256, result.obtained) == ("ab" * 32, obtained)
    assert result.verified is (obtained is Obtained.RECONCILED_VERIFIED)


def test_adopted_names_an_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.txt"):
        UploadResult.adopted(found(1), tmp_path / "missing.txt")
