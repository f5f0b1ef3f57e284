"""A request body that stops short of its Content-Length ends in a 408, not a connection held forever."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from mock_provider import MockProvider
from tests.mock_provider import _raw
from tests.mock_provider._helpers import KEY, cli_server, upload, wait_for

GLM = "/glm/api/paas/v4"
BODY_TIMEOUT = 0.3


@pytest.fixture
def quick() -> Iterator[MockProvider]:
    with MockProvider(body_timeout=BODY_TIMEOUT) as server:
        yield server


def _send_short(url: str, path: str, head: dict[str, str], body: bytes) -> socket.socket:
    """Send a request head and `body`, which is less than the head announces, and keep the socket open."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    lines = [f"PUT {path} HTTP/1.1", f"Host: {parts.hostname}", *(f"{k}: {v}" for k, v in head.items())]
    sock.sendall("\r\n".join([*lines, "", ""]).encode() + body)
    return sock


@pytest.mark.parametrize(
    ("path", "head", "body"),
    [
        pytest.param(f"{GLM}/files", {"Content-Length": "100", **KEY}, b"0123456789", id="content-length"),
        pytest.param("/_chaos", {"Content-Length": "100"}, b'{"rules": [', id="control-endpoint"),
        pytest.param(
            "/_chaos", {"Transfer-Encoding": "chunked"}, b"64\r\n" + b"x" * 10, id="chunked-cut-short"
        ),
    ],
)
def test_a_body_shorter_than_announced_gets_a_408_after_the_timeout(
    quick: MockProvider, path: str, head: dict[str, str], body: bytes
) -> None:
    sock = _send_short(quick.url, path, head, body)

    # The socket's own 5 s timeout fails the test if the server keeps waiting for the missing bytes.
    response = _raw.read_until_closed(sock)
    assert response.status == 408
    assert response.headers["connection"] == "close"
    assert "no request body bytes arrived for 0.3 s" in json.loads(response.body)["error"]["message"]
    # The connection is gone: the one still open is the stats request's own.
    assert wait_for(lambda: quick.stats()["connections_open"] == 1)


def test_a_slow_rule_still_reads_a_body_that_takes_longer_than_the_timeout(quick: MockProvider) -> None:
    # The pacer sleeps between reads; only the client's silence counts against the body timeout.
    quick.set_rules(
        [{"match": {"operation": "upload"}, "effect": {"kind": "slow", "bytes_per_second": 200_000}}]
    )
    data = b"s" * 200_000
    with httpx.Client(base_url=quick.url, headers=KEY, timeout=10) as client:
        response = upload(client, GLM, data, purpose="batch")

    assert response.status_code == 200
    (entry,) = wait_for(quick.journal)  # written after the answer's last byte
    assert entry["fault"] == "slow"
    assert entry["bytes_in"] > len(data)
    assert entry["duration_s"] > 3 * BODY_TIMEOUT  # the body really took longer than the timeout


def test_a_hang_still_hangs_past_the_body_timeout(quick: MockProvider) -> None:
    quick.set_rules([{"match": {"operation": "upload"}, "effect": {"kind": "hang"}}])

    with (
        httpx.Client(base_url=quick.url, headers=KEY, timeout=4 * BODY_TIMEOUT) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        upload(client, GLM, b"h" * 1000, purpose="batch")
    assert wait_for(lambda: quick.journal())[0]["fault"] == "hang"


def test_the_cli_takes_a_body_timeout() -> None:
    with cli_server("--body-timeout", str(BODY_TIMEOUT)) as server:
        sock = _send_short(server.url, "/_chaos", {"Content-Length": "50"}, b"{")
        assert _raw.read_until_closed(sock).status == 408


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_a_body_timeout_that_is_not_positive_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="body_timeout="):
        MockProvider(body_timeout=value)
