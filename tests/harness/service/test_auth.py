"""A bearer token on every request, and only this service's own files shown, served or deleted."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from llmfiles.legacy import LegacyFilesClient
from llmfiles.providers import KIMI
from mock_provider import MockProvider
from tests.harness.service._running import run_service

pytestmark = pytest.mark.integration


def test_a_generated_token_is_printed_and_every_request_but_healthz_needs_it(
    mock: MockProvider, tmp_path: Path
) -> None:
    with run_service(mock, tmp_path) as service:
        assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", service.token)
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": service.token}):
                for method, path in [("GET", "/files"), ("POST", "/upload"), ("GET", "/metrics")]:
                    answer = client.request(method, path, headers=headers, content=b"x")
                    assert answer.status_code == 401, (method, path, headers)
                    assert answer.json()["error"] == "AuthenticationError"
                    assert answer.headers["www-authenticate"] == "Bearer"
            assert client.get("/files", headers=service.auth).status_code == 200
        assert service.token not in service.log_text()
        assert service.spooled() == []


def test_a_given_token_is_used_and_not_printed(mock: MockProvider, tmp_path: Path) -> None:
    token = "given-token-0123456789abcdef"
    with run_service(mock, tmp_path, env={"LLMFILES_SERVICE_TOKEN": token}) as service:
        answer = httpx.get(f"{service.url}/files", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200


@pytest.mark.parametrize("registry", ["none", "default"])
def test_listing_content_and_delete_see_only_this_services_files(
    mock: MockProvider, tmp_path: Path, registry: str
) -> None:
    foreign = tmp_path / "someone-elses.txt"
    foreign.write_bytes(b"not yours")
    other = LegacyFilesClient(KIMI, api_key="another-team", base_url=mock.kimi_base_url)
    theirs = other.upload(foreign, purpose="file-extract").file.id
    with (
        run_service(mock, tmp_path, "--registry", registry) as service,
        httpx.Client(base_url=service.url, headers=service.auth, timeout=10) as client,
    ):
        mine = client.post("/upload?name=mine.txt", content=b"mine").json()["file_id"]
        assert [f["id"] for f in client.get("/files").json()["data"]] == [mine]
        assert client.get(f"/files/{theirs}/content").status_code == 404
        assert client.get(f"/files/{mine}/content").status_code == 200
        sha256 = hashlib.sha256(b"not yours").hexdigest()
        refused = client.delete(f"/files/{theirs}", params={"sha256": sha256})
        assert refused.status_code == 404
        assert refused.json()["error"] == "NotFoundError"
    assert ("delete", theirs) not in [(e["operation"], e["file_id"]) for e in mock.journal()]
    assert theirs in {f.id for f in other.list()}
