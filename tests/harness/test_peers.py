"""The scale case's clients: the class that plays ours is the one the case was handed (its seam)."""

import hashlib
from pathlib import Path

import pytest

import mock_provider
from harness.cases._peers import OURS, Stored, open_peer
from llmfiles import IntegrityError
from llmfiles.transfer import AsyncFilesClient

_NOWHERE = "http://127.0.0.1:9"  # nothing is sent: the clients are only built and closed


async def test_ours_is_built_from_the_class_handed_in_and_the_peers_ignore_it() -> None:
    built: list[AsyncFilesClient] = []

    class Marked(AsyncFilesClient):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            built.append(self)

    async with open_peer(OURS, _NOWHERE):
        pass
    assert built == []
    async with open_peer("httpx, file object", _NOWHERE, ours=Marked):
        pass
    assert built == []
    async with open_peer(OURS, _NOWHERE, ours=Marked):
        pass
    assert len(built) == 1


async def test_ours_checks_every_download_against_the_hash_it_is_given(tmp_path: Path) -> None:
    """The curves measure ours with SHA-256 on: a download whose bytes miss the hash is refused."""
    data = b'{"n": 1}\n' * 5000
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    dest = tmp_path / "dl"
    dest.mkdir()
    with mock_provider.MockProvider("calm", seed=3) as mock:
        async with open_peer(OURS, mock.glm_base_url) as ours:
            file_id = await ours.upload(path)
            assert await ours.download(Stored(file_id, hashlib.sha256(data).hexdigest()), dest) == len(data)
            with pytest.raises(IntegrityError, match="differs from expected_sha256"):
                await ours.download(Stored(file_id, hashlib.sha256(b"other").hexdigest()), dest)
