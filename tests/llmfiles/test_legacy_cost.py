"""The legacy arm keeps the old cost that matters (a connection per call), not a CA-bundle parse per call."""

import ssl
from pathlib import Path
from typing import Any

import pytest

from llmfiles import KIMI
from llmfiles.legacy import LegacyFilesClient

pytestmark = pytest.mark.integration


def test_calls_share_one_tls_context_but_each_opens_its_own_connection(
    mock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(create(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    source = tmp_path / "a.txt"
    source.write_bytes(b"old path")
    client = LegacyFilesClient(KIMI, api_key="sk-test", base_url=mock.kimi_base_url)
    before = mock.stats()["connections_accepted"]
    ids = [client.upload(source, purpose="file-extract").file.id for _ in range(3)]
    client.list()
    client.delete(ids[0])
    assert len(made) <= 1  # at most the process's first, shared context
    # Five calls, five connections, as the old code made them (the stats call is one more of its own).
    assert mock.stats()["connections_accepted"] - before == 5 + 1
