"""Each chaos effect, checked from the client's side of a real socket."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mock_provider import MockProvider, ProfileError
from mock_provider._rules import parse_rules
from tests.mock_provider import _raw
from tests.mock_provider._helpers import KEY, upload, wait_for

KIMI = "/kimi/v1"
GLM = "/glm/api/paas/v4"


def rule(effect: dict[str, Any], **match: str) -> dict[str, Any]:
    return {"match": match, "effect": effect}


def test_a_header_rule_hits_only_requests_that_carry_the_header(mock: MockProvider) -> None:
    mock.set_rules([{"match": {"headers": {"X-Tenant": "blue"}}, "effect": {"kind": "error", "status": 503}}])

    blue = httpx.get(f"{mock.url}{KIMI}/files", headers={**KEY, "x-tenant": "blue"})
    green = httpx.get(f"{mock.url}{KIMI}/files", headers={**KEY, "X-Tenant": "green"})
    plain = httpx.get(f"{mock.url}{KIMI}/files", headers=KEY)
    assert (blue.status_code, green.status_code, plain.status_code) == (503, 200, 200)
    assert [e["fault"] for e in mock.journal()] == ["error", None, None]


def test_reset_is_a_connection_reset_seen_by_the_client(mock: MockProvider) -> None:
    mock.set_rules([rule({"kind": "reset"})])

    sock = _raw.send(mock.url, "GET", f"{KIMI}/files")
    with pytest.raises(ConnectionResetError):
        _raw.read_until_closed(sock)
    assert [(e["fault"], e["status"]) for e in mock.journal()] == [("reset", None)]


def test_reset_after_k_request_bytes_cuts_an_upload_short(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules([rule({"kind": "reset", "after_request_bytes": 10_000}, operation="upload")])
    data = b"x" * (8 * 1024 * 1024)

    with pytest.raises(httpx.TransportError):
        upload(client, KIMI, data)
    (entry,) = mock.journal()
    assert 10_000 <= entry["bytes_in"] < len(data)
    assert client.get(f"{KIMI}/files").json()["data"] == []


def test_partial_json_body_is_a_short_read_under_the_declared_length(mock: MockProvider) -> None:
    mock.set_rules([rule({"kind": "partial", "fraction": 0.5})])

    response = _raw.read_until_closed(_raw.send(mock.url, "GET", f"{KIMI}/files"))
    assert response.status == 200
    assert 0 < len(response.body) < response.declared_length
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{mock.url}{KIMI}/files", headers={"Authorization": "Bearer k"})


def test_partial_content_body_is_a_short_read(mock: MockProvider, client: httpx.Client) -> None:
    data = bytes(range(256)) * 4096
    file_id = upload(client, GLM, data, purpose="batch").json()["id"]
    mock.set_rules([rule({"kind": "partial", "fraction": 0.25}, operation="content")])

    response = _raw.read_until_closed(_raw.send(mock.url, "GET", f"{GLM}/files/{file_id}/content"))
    assert response.declared_length == len(data)
    assert response.body == data[: len(data) // 4]


def test_malformed_is_a_200_that_is_not_json(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules([rule({"kind": "malformed"}, operation="upload")])

    response = upload(client, KIMI, b"hello")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_hang_trips_the_clients_read_timeout(mock: MockProvider) -> None:
    mock.set_rules([rule({"kind": "hang"}, operation="list")])

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{mock.url}{KIMI}/files", headers={"Authorization": "Bearer k"}, timeout=0.3)
    # The hang ends when the client gives up; only then is it journaled, without a status.
    assert wait_for(lambda: mock.journal())[0]["fault"] == "hang"
    assert mock.journal()[0]["status"] is None


def test_lost_response_leaves_the_file_in_the_listing(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules([rule({"kind": "lost_response"}, operation="upload")])

    with pytest.raises(httpx.TransportError):
        upload(client, KIMI, b"precious", name="p.txt")
    listing = client.get(f"{KIMI}/files").json()["data"]
    assert [f["filename"] for f in listing] == ["p.txt"]
    (entry, _) = mock.journal()
    assert (entry["fault"], entry["status"], entry["file_id"]) == ("lost_response", None, listing[0]["id"])
    assert mock.stats()["files"]["kimi"] == 1


@pytest.mark.parametrize(
    ("base", "key"), [pytest.param(KIMI, "type", id="kimi"), pytest.param(GLM, "code", id="glm")]
)
def test_stored_then_error_stores_the_upload_and_answers_the_status(
    mock: MockProvider, client: httpx.Client, base: str, key: str
) -> None:
    mock.set_rules([rule({"kind": "stored_then_error", "status": 504}, operation="upload")])
    purpose = "batch" if base == GLM else "file-extract"

    response = upload(client, base, b"landed anyway", name="s.txt", purpose=purpose)
    assert response.status_code == 504
    assert key in response.json()["error"]
    listing = client.get(f"{base}/files").json()["data"]
    assert [(f["filename"], f["bytes"]) for f in listing] == [("s.txt", len(b"landed anyway"))]
    (entry, _) = mock.journal()
    assert (entry["fault"], entry["status"], entry["file_id"]) == ("stored_then_error", 504, listing[0]["id"])


def test_stored_then_error_only_takes_error_statuses() -> None:
    with pytest.raises(ProfileError, match="stored_then_error"):
        parse_rules([rule({"kind": "stored_then_error", "status": 200})])


@pytest.mark.parametrize("status", [500, 502, 503, 504, 401, 413, 429])
@pytest.mark.parametrize(
    ("base", "key"), [pytest.param(KIMI, "type", id="kimi"), pytest.param(GLM, "code", id="glm")]
)
def test_injected_errors_use_the_providers_shape(
    mock: MockProvider, client: httpx.Client, status: int, base: str, key: str
) -> None:
    mock.set_rules([rule({"kind": "error", "status": status, "retry_after": 3}, operation="upload")])

    response = upload(client, base, b"x", purpose="batch" if base == GLM else "image")
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {key, "message"}
    assert response.headers["retry-after"] == "3"
    assert client.get(f"{base}/files").json()["data"] == []  # the upload was not stored


def test_a_429_always_says_when_to_retry(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules(
        [rule({"kind": "error", "status": 429}, provider="kimi"), rule({"kind": "error", "status": 503})]
    )

    limited = client.get(f"{KIMI}/files")
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["message"].endswith("please try again after 1 seconds")
    assert "retry-after" not in client.get(f"{GLM}/files").headers


def test_slow_body_caps_download_and_upload_rates(mock: MockProvider, client: httpx.Client) -> None:
    data = b"z" * 200_000
    file_id = upload(client, GLM, data, purpose="batch").json()["id"]
    mock.set_rules([rule({"kind": "slow", "bytes_per_second": 1_000_000})])

    assert client.get(f"{GLM}/files/{file_id}/content").content == data
    upload(client, GLM, data, purpose="batch")
    download, slow_upload = mock.journal()[1:]
    # A rate cap is a lower bound on duration: 200 kB at 1 MB/s cannot take less than 0.2 s.
    assert download["fault"] == slow_upload["fault"] == "slow"
    assert download["duration_s"] >= 0.9 * download["bytes_out"] / 1_000_000
    assert slow_upload["duration_s"] >= 0.9 * slow_upload["bytes_in"] / 1_000_000


def test_fixed_latency_delays_the_response(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules([rule({"kind": "latency", "seconds": 0.2})])

    client.get(f"{KIMI}/files")
    (entry,) = mock.journal()
    assert (entry["fault"], entry["latency_s"]) == ("latency", 0.2)
    assert entry["duration_s"] >= 0.2


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        pytest.param({"first": 2}, [503, 503, 200, 200, 200, 200], id="first-2"),
        pytest.param({"every": 3}, [200, 200, 503, 200, 200, 503], id="every-3rd"),
        pytest.param({"probability": 0.0}, [200] * 6, id="never"),
    ],
)
def test_count_triggers(
    mock: MockProvider, client: httpx.Client, trigger: dict[str, int], expected: list[int]
) -> None:
    mock.set_rules([{"trigger": trigger, "effect": {"kind": "error", "status": 503}}])

    assert [client.get(f"{KIMI}/files").status_code for _ in expected] == expected


def test_rules_match_provider_operation_and_method(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules([rule({"kind": "error", "status": 500}, provider="glm", operation="list", method="GET")])

    assert client.get(f"{GLM}/files").status_code == 500
    assert client.get(f"{KIMI}/files").status_code == 200
    assert upload(client, GLM, b"x", purpose="batch").status_code == 200


def test_outage_resets_every_request_but_control_still_answers() -> None:
    with MockProvider("outage") as mock:
        for path in (f"{KIMI}/files", f"{GLM}/files"):
            with pytest.raises(ConnectionResetError):
                _raw.read_until_closed(_raw.send(mock.url, "GET", path))
        assert mock.stats()["by_fault"] == {"reset": 2}


def test_a_hang_ends_when_the_server_stops() -> None:
    with MockProvider() as mock:
        mock.set_rules([rule({"kind": "hang"})])
        sock = _raw.send(mock.url, "GET", f"{KIMI}/files")
        wait_for(lambda: mock.stats()["connections_open"] == 2)  # the hung one and this stats call
    # Leaving the block ended the hung exchange: the client sees the connection close, not silence.
    assert sock.recv(1) == b""
    sock.close()
