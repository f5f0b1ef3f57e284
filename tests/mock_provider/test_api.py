"""The Files API of both providers under the calm profile: shapes, limits, errors, pagination, Range."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

from mock_provider import MockProvider
from tests.mock_provider import _raw
from tests.mock_provider._helpers import KEY, upload

KIMI = "/kimi/v1"
GLM = "/glm/api/paas/v4"
MB = 1024 * 1024


def test_kimi_upload_returns_the_documented_file_object(client: httpx.Client) -> None:
    response = upload(client, KIMI, b"hello", name="notes.txt")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "object",
        "bytes",
        "created_at",
        "filename",
        "purpose",
        "status",
        "status_details",
    }
    assert re.fullmatch(r"[a-z0-9]{20}", body["id"])
    assert (body["object"], body["bytes"], body["filename"]) == ("file", 5, "notes.txt")
    assert (body["purpose"], body["status"], body["status_details"]) == ("file-extract", "ok", "")


def test_glm_upload_returns_its_file_object_and_id_format(client: httpx.Client) -> None:
    response = upload(client, GLM, b'{"a": 1}\n', purpose="batch", name="b.jsonl")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "object", "bytes", "created_at", "filename", "purpose"}
    assert re.fullmatch(r"file-\d{17}-[a-z0-9]{5}", body["id"])


def test_upload_is_journaled_with_the_sha256_of_the_bytes(client: httpx.Client, mock: MockProvider) -> None:
    data = bytes(range(256)) * 4096
    file_id = upload(client, KIMI, data, purpose="image").json()["id"]

    (entry,) = mock.journal()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert (entry["file_id"], entry["operation"], entry["status"], entry["fault"]) == (
        file_id,
        "upload",
        200,
        None,
    )
    assert entry["bytes_in"] > len(data)
    stored = mock.data_dir / "files" / "kimi" / file_id
    assert stored.read_bytes() == data


def test_kimi_list_retrieve_content_delete(client: httpx.Client) -> None:
    file_id = upload(client, KIMI, "你好, world".encode(), name="doc.txt").json()["id"]

    listing = client.get(f"{KIMI}/files").json()
    assert listing["object"] == "list"
    assert [f["id"] for f in listing["data"]] == [file_id]
    assert client.get(f"{KIMI}/files/{file_id}").json()["id"] == file_id
    content = client.get(f"{KIMI}/files/{file_id}/content").json()
    assert content == {
        "content": "你好, world",
        "file_type": "text/plain",
        "filename": "doc.txt",
        "title": "",
        "type": "file",
    }
    assert client.delete(f"{KIMI}/files/{file_id}").json() == {
        "id": file_id,
        "object": "file",
        "deleted": True,
    }
    assert client.get(f"{KIMI}/files/{file_id}").status_code == 404
    assert client.get(f"{KIMI}/files").json()["data"] == []


def test_extract_of_binary_content_is_a_deterministic_digest_line(client: httpx.Client) -> None:
    data = b"\xff\xfe\x00binary"
    file_id = upload(client, KIMI, data, name="x.pdf").json()["id"]

    content = client.get(f"{KIMI}/files/{file_id}/content").json()
    assert content["file_type"] == "application/pdf"
    assert hashlib.sha256(data).hexdigest() in content["content"]


def test_glm_batch_content_is_the_stored_bytes_with_range_support(client: httpx.Client) -> None:
    data = bytes(range(256)) * 1000
    file_id = upload(client, GLM, data, purpose="batch", name="in.jsonl").json()["id"]

    whole = client.get(f"{GLM}/files/{file_id}/content")
    assert (whole.status_code, whole.content) == (200, data)
    assert whole.headers["content-type"] == "application/octet-stream"
    tail = client.get(f"{GLM}/files/{file_id}/content", headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206
    assert tail.content == data[1000:]
    assert tail.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    beyond = client.get(f"{GLM}/files/{file_id}/content", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416


def test_glm_file_extract_content_is_json(client: httpx.Client) -> None:
    file_id = upload(client, GLM, b"some text", purpose="file-extract", name="a.csv").json()["id"]

    assert client.get(f"{GLM}/files/{file_id}/content").json()["content"] == "some text"


def test_glm_retrieve_is_absent(client: httpx.Client) -> None:
    file_id = upload(client, GLM, b"x", purpose="batch").json()["id"]

    response = client.get(f"{GLM}/files/{file_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "1214"


def test_glm_list_paginates_newest_first(client: httpx.Client) -> None:
    ids = [upload(client, GLM, b"x", purpose="batch").json()["id"] for _ in range(5)]

    first = client.get(f"{GLM}/files", params={"limit": 2}).json()
    assert [f["id"] for f in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    rest = client.get(f"{GLM}/files", params={"limit": 10, "after": first["data"][-1]["id"]}).json()
    assert [f["id"] for f in rest["data"]] == ids[::-1][2:]
    assert rest["has_more"] is False
    oldest = client.get(f"{GLM}/files", params={"order": "asc", "limit": 1}).json()
    assert oldest["data"][0]["id"] == ids[0]


def test_list_filters_by_purpose(client: httpx.Client) -> None:
    upload(client, GLM, b"x", purpose="batch")
    agent_id = upload(client, GLM, b"y", purpose="agent").json()["id"]

    listing = client.get(f"{GLM}/files", params={"purpose": "agent"}).json()
    assert [f["id"] for f in listing["data"]] == [agent_id]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        pytest.param(KIMI, {"type": "invalid_request_error"}, id="kimi"),
        pytest.param(GLM, {"code": "1214"}, id="glm"),
    ],
)
@pytest.mark.parametrize(
    ("fields", "files", "needle"),
    [
        pytest.param({"purpose": "file-extract"}, None, "no file", id="missing-file"),
        pytest.param({}, {"file": ("a.txt", b"x")}, "purpose is missing", id="missing-purpose"),
        pytest.param(
            {"purpose": "nope"}, {"file": ("a.txt", b"x")}, "purpose='nope' is invalid", id="bad-purpose"
        ),
        pytest.param(
            {"purpose": "file-extract"}, {"file": ("a.txt", b"")}, "File size is zero", id="zero-bytes"
        ),
    ],
)
def test_bad_uploads_get_the_providers_error_shape(
    client: httpx.Client,
    mock: MockProvider,
    base: str,
    expected: dict[str, str],
    fields: dict[str, str],
    files: dict[str, tuple[str, bytes]] | None,
    needle: str,
) -> None:
    # A lone form field would be sent url-encoded; a dummy part keeps the body multipart.
    response = client.post(f"{base}/files", data=fields, files=files or {"other": ("o.txt", b"o")})

    assert response.status_code == 400
    error = response.json()["error"]
    assert expected.items() <= error.items()
    assert needle in error["message"]
    assert list((mock.data_dir / "tmp").iterdir()) == []  # nothing partial left behind


def test_non_multipart_upload_is_refused(client: httpx.Client) -> None:
    response = client.post(f"{KIMI}/files", json={"purpose": "file-extract"})

    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["error"]["message"]


@pytest.mark.parametrize("key", ["", "bad-key", "badly"], ids=["empty", "bad-key", "badly"])
@pytest.mark.parametrize(
    ("base", "expected"),
    [
        pytest.param(KIMI, {"type": "invalid_authentication_error"}, id="kimi"),
        pytest.param(GLM, {"code": "1002"}, id="glm"),
    ],
)
def test_bad_or_missing_key_is_401(mock: MockProvider, key: str, base: str, expected: dict[str, str]) -> None:
    response = httpx.get(f"{mock.url}{base}/files", headers={"Authorization": f"Bearer {key}".strip()})

    assert response.status_code == 401
    assert expected.items() <= response.json()["error"].items()
    assert httpx.get(f"{mock.url}{base}/files").status_code == 401


def test_too_large_upload_is_refused_without_storing(client: httpx.Client, mock: MockProvider) -> None:
    response = upload(client, GLM, b"x" * (20 * MB + 1), purpose="agent")

    assert response.status_code == 400
    assert "max file size is 20MB" in response.json()["error"]["message"]
    assert client.get(f"{GLM}/files").json()["data"] == []
    assert list((mock.data_dir / "tmp").iterdir()) == []


def test_over_100mb_on_glm_is_435(client: httpx.Client, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    with big.open("wb") as handle:
        handle.truncate(100 * MB + 1)

    with big.open("rb") as handle:
        response = client.post(
            f"{GLM}/files", data={"purpose": "batch"}, files={"file": ("big.jsonl", handle)}
        )

    assert response.status_code == 435
    assert response.json()["error"]["code"] == "1214"


def test_max_file_bytes_can_change_at_run_time(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_max_file_bytes(1)
    assert upload(client, GLM, b"xx", purpose="batch").status_code == 400
    mock.set_max_file_bytes(None)
    assert upload(client, GLM, b"xx", purpose="batch").status_code == 200


def test_max_file_bytes_raises_the_limit() -> None:
    with MockProvider(max_file_bytes=30 * MB) as big, httpx.Client(base_url=big.url, headers=KEY) as http:
        assert upload(http, GLM, b"x" * (20 * MB + 1), purpose="agent").status_code == 200


def test_file_count_limit_per_purpose(client: httpx.Client) -> None:
    for _ in range(100):
        assert upload(client, GLM, b"x", purpose="code-interpreter").status_code == 200

    response = upload(client, GLM, b"x", purpose="code-interpreter")
    assert response.status_code == 400
    assert "max file count 100" in response.json()["error"]["message"]


def test_unknown_file_is_404_in_each_shape(client: httpx.Client) -> None:
    kimi = client.get(f"{KIMI}/files/nosuchfile0000000000/content")
    glm = client.delete(f"{GLM}/files/file-nope")

    assert (kimi.status_code, kimi.json()["error"]["type"]) == (404, "resource_not_found_error")
    assert (glm.status_code, glm.json()["error"]["code"]) == (404, "1214")


def test_keep_alive_serves_many_requests_on_one_connection(client: httpx.Client, mock: MockProvider) -> None:
    for _ in range(20):
        upload(client, KIMI, b"x" * 1000)
        client.get(f"{KIMI}/files")

    stats = mock.stats()
    assert stats["requests"] == 40
    assert stats["connections_accepted"] == 2  # the client's one, and this stats call's
    assert len(client.get(f"{KIMI}/files").json()["data"]) == 20


def test_expect_100_continue_is_answered_before_the_body(mock: MockProvider) -> None:
    body = (
        b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nimage\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n\r\nPNG\r\n--B--\r\n'
    )
    headers = {"Content-Type": "multipart/form-data; boundary=B", "Expect": "100-continue"}
    sock = _raw.send(mock.url, "POST", f"{KIMI}/files", headers={**headers, "Content-Length": str(len(body))})

    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        interim += sock.recv(1)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"  # curl would otherwise stall a second
    sock.sendall(body)
    response = _raw.read_until_closed(sock)
    assert response.status == 200
    assert json.loads(response.body)["filename"] == "p.png"


def test_garbage_on_the_wire_gets_a_400_not_a_crash(mock: MockProvider, client: httpx.Client) -> None:
    sock = _raw.send(mock.url, "NOT A METHOD", "/ nonsense")

    assert _raw.read_until_closed(sock).status == 400
    assert client.get(f"{KIMI}/files").status_code == 200


def test_head_is_405_and_the_connection_lives_on(client: httpx.Client) -> None:
    assert client.head(f"{KIMI}/files").status_code == 405
    assert client.get(f"{KIMI}/files").status_code == 200


def test_unknown_routes_are_404(client: httpx.Client) -> None:
    assert client.get("/kimi/v1/models").status_code == 404
    assert client.put(f"{KIMI}/files/abc").status_code == 404
    assert client.get(f"{KIMI}/filesystem").status_code == 404
