"""The legacy arm against the real mock: same results and errors as the async arm, the old way."""

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmfiles import (
    GLM,
    KIMI,
    AuthenticationError,
    FileTooLargeError,
    TransportError,
    UnsupportedPurposeError,
)
from llmfiles.legacy import LegacyFilesClient
from llmfiles.transfer import UploadResult, sanitize_filename
from tests.mock_provider._helpers import wait_for

pytestmark = pytest.mark.integration


def test_upload_download_list_delete(mock: Any, tmp_path: Path) -> None:
    source = tmp_path / "batch.jsonl"
    source.write_bytes(b'{"custom_id": 1}\n' * 5000)
    client = LegacyFilesClient(GLM, api_key="sk-test", base_url=mock.glm_base_url)
    result = client.upload(source, purpose="batch")
    assert isinstance(result, UploadResult)
    assert (result.size, result.attempts, result.reconciled) == (source.stat().st_size, 1, False)
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    # The mock journals an exchange after its last byte left: wait for the entry, do not race it.
    journal = wait_for(lambda: [e for e in mock.journal() if e["operation"] == "upload"])
    assert journal[0]["sha256"] == result.sha256
    dest = tmp_path / "dest"
    dest.mkdir()
    path = client.download(result.file.id, dest)
    assert path.read_bytes() == source.read_bytes()
    assert [f.id for f in client.list()] == [result.file.id]
    client.delete(result.file.id)
    assert client.list() == []


def test_errors_are_the_same_tree(mock: Any, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"hello")
    with pytest.raises(AuthenticationError) as caught:
        LegacyFilesClient(KIMI, api_key="bad-key-123", base_url=mock.kimi_base_url).upload(
            source, purpose="file-extract"
        )
    assert "bad-key-123" not in str(caught.value)
    client = LegacyFilesClient(KIMI, api_key="sk-test", base_url=mock.kimi_base_url)
    with pytest.raises(UnsupportedPurposeError):
        client.upload(source, purpose="batch")
    mock.set_rules([{"effect": {"kind": "reset"}}])
    with pytest.raises(TransportError):
        client.upload(source, purpose="file-extract")
    assert "sk-test" not in repr(client)


def test_limits_are_checked_before_sending(mock: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024 + 1)
    with pytest.raises(FileTooLargeError):
        LegacyFilesClient(GLM, api_key="sk-test", base_url=mock.glm_base_url).upload(big, purpose="agent")
    assert mock.journal() == []


def test_download_name_is_sanitised(mock: Any, tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    source.write_bytes(b"{}\n")
    client = LegacyFilesClient(GLM, api_key="sk-test", base_url=mock.glm_base_url)
    uploaded = client.upload(source, purpose="batch")
    dest = tmp_path / "dest"
    dest.mkdir()
    assert client.download(uploaded.file.id, dest).parent == dest.resolve()


def test_a_hostile_download_name_is_sanitised_and_stays_inside(mock: Any, tmp_path: Path) -> None:
    """The provider names the file ``../../x``: it lands inside dest as the sanitised name, nowhere else."""
    client = LegacyFilesClient(GLM, api_key="sk-test", base_url=mock.glm_base_url)
    with httpx.Client(base_url=mock.glm_base_url + "/", headers={"Authorization": "Bearer sk-test"}) as raw:
        stored = raw.post("files", data={"purpose": "batch"}, files={"file": ("../../x", b"{}\n")}).json()
    assert stored["filename"] == "../../x"  # the mock keeps the name as sent, as a provider may
    dest = tmp_path / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    path = client.download(stored["id"], dest)
    assert path == dest.resolve() / sanitize_filename("../../x") == dest.resolve() / "_.._x"
    assert path.read_bytes() == b"{}\n"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["_.._x"]
