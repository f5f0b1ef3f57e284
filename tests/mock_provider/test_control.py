"""Run-time control: /_chaos, /_reset, /_journal, /_stats, /_config."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from mock_provider import Error, Match, MockProvider, MockProviderError, ProfileError, Rule, Trigger
from tests.mock_provider._helpers import upload, wait_for

KIMI = "/kimi/v1"


def test_chaos_can_be_read_and_replaced(mock: MockProvider) -> None:
    assert httpx.get(f"{mock.url}/_chaos").json() == {"profile": "calm", "seed": 0, "rules": []}

    mock.set_profile("brownout", seed=4)
    state = httpx.get(f"{mock.url}/_chaos").json()
    assert (state["profile"], state["seed"], len(state["rules"])) == ("brownout", 4, 2)

    mock.set_rules([{"effect": {"kind": "hang"}}])
    state = httpx.get(f"{mock.url}/_chaos").json()
    assert state["profile"] is None
    assert state["rules"][0]["effect"]["kind"] == "hang"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        pytest.param({}, "takes", id="empty"),
        pytest.param({"profile": "calm", "rules": []}, "takes", id="both"),
        pytest.param({"profile": "stormy"}, "profile='stormy'", id="unknown-profile"),
        pytest.param({"rules": [{"effect": {"kind": "nope"}}]}, "rules are invalid", id="bad-rule"),
        pytest.param({"rules": [], "seed": "x"}, "seed='x'", id="bad-seed"),
    ],
)
def test_bad_chaos_updates_are_400_and_change_nothing(
    mock: MockProvider, payload: object, needle: str
) -> None:
    response = httpx.put(f"{mock.url}/_chaos", json=payload)

    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]
    assert httpx.get(f"{mock.url}/_chaos").json()["profile"] == "calm"


def test_chaos_refuses_a_profile_file_at_run_time_and_never_shows_it(
    mock: MockProvider, tmp_path: Path
) -> None:
    # A valid profile and an invalid one: a file on the host is refused either way, unread and unshown.
    valid = tmp_path / "valid.toml"
    valid.write_text('[[rules]]\neffect = { kind = "hang" }\n', encoding="utf-8")
    secret = tmp_path / "secret.toml"
    secret.write_text('password = "hunter2-do-not-show"\n', encoding="utf-8")
    for path in (valid, secret):
        response = httpx.put(f"{mock.url}/_chaos", json={"profile": str(path)})

        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert "not a shipped profile" in message
        assert "hunter2" not in message
        assert httpx.get(f"{mock.url}/_chaos").json() == {"profile": "calm", "seed": 0, "rules": []}


def test_deeply_nested_control_body_is_a_400_with_a_message(mock: MockProvider) -> None:
    depth = 50_000
    body = b'{"rules": ' + b"[" * depth + b"]" * depth + b"}"

    response = httpx.put(f"{mock.url}/_chaos", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert "nests too deeply" in response.json()["error"]["message"]


def test_set_profile_refusal_raises_with_the_servers_reason(mock: MockProvider) -> None:
    with pytest.raises(MockProviderError, match="stormy"):
        mock.set_profile("stormy")


def test_reset_forgets_files_and_journal(mock: MockProvider, client: httpx.Client) -> None:
    file_id = upload(client, KIMI, b"x").json()["id"]
    mock.reset()

    assert mock.journal() == []
    assert mock.stats()["files"] == {"kimi": 0, "glm": 0}
    assert not (mock.data_dir / "files" / "kimi" / file_id).exists()
    assert client.get(f"{KIMI}/files").json()["data"] == []


def test_reset_restarts_the_fault_and_id_sequences(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules([{"trigger": {"first": 1}, "effect": {"kind": "error", "status": 500}}])
    assert client.get(f"{KIMI}/files").status_code == 500
    assert upload(client, KIMI, b"x").status_code == 200
    first_id = client.get(f"{KIMI}/files").json()["data"][0]["id"]

    mock.reset()
    assert client.get(f"{KIMI}/files").status_code == 500
    assert upload(client, KIMI, b"x").json()["id"] == first_id


def test_journal_since_and_stats(mock: MockProvider, client: httpx.Client) -> None:
    for _ in range(3):
        client.get(f"{KIMI}/files")
    mock.set_rules([{"effect": {"kind": "error", "status": 503}}])
    client.get(f"{KIMI}/files")

    assert [e["seq"] for e in mock.journal(since=2)] == [3, 4]
    stats = mock.stats()
    assert (stats["requests"], stats["by_status"], stats["by_fault"]) == (
        4,
        {"200": 3, "503": 1},
        {"None": 3, "error": 1},
    )
    assert set(mock.journal()[0]) >= {
        "seq", "provider", "operation", "method", "path", "status", "bytes_in", "bytes_out",
        "sha256", "file_id", "fault", "started_at", "duration_s",
    }  # fmt: skip


def test_control_is_never_subject_to_chaos(mock: MockProvider) -> None:
    mock.set_profile("outage")

    assert httpx.get(f"{mock.url}/_stats").status_code == 200
    assert httpx.get(f"{mock.url}/_nope").status_code == 404


def test_created_at_comes_from_the_injected_clock() -> None:
    with MockProvider(clock=lambda: 1_700_000_000.5) as mock, httpx.Client(base_url=mock.url) as http:
        http.headers["Authorization"] = "Bearer k"
        body = upload(http, "/glm/api/paas/v4", b"x", purpose="batch").json()
        assert body["created_at"] == 1_700_000_000
        assert body["id"].startswith("file-20231114221320500-")
        assert mock.journal()[0]["started_at"] == 1_700_000_000.5


def test_bad_constructor_arguments_fail_early(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="max_file_bytes=0"):
        MockProvider(max_file_bytes=0)
    with pytest.raises(ValueError, match="profile='stormy'"):
        MockProvider("stormy")


def test_set_rules_takes_models_too(mock: MockProvider, client: httpx.Client) -> None:
    mock.set_rules([Rule(match=Match(operation="list"), trigger=Trigger(every=2), effect=Error(status=502))])

    assert [client.get(f"{KIMI}/files").status_code for _ in range(4)] == [200, 502, 200, 502]


def test_set_rules_validates_before_sending(mock: MockProvider) -> None:
    with pytest.raises(ProfileError, match="rules are invalid"):
        mock.set_rules([{"effect": {"kind": "error", "status": 418}}])


def test_the_journal_is_a_jsonl_file_in_the_data_dir(mock: MockProvider, client: httpx.Client) -> None:
    upload(client, KIMI, b"x")
    client.get(f"{KIMI}/files")

    # The list request is journaled once its answer has left: a moment after the client has it.
    journal = mock.data_dir / "journal.jsonl"
    wait_for(lambda: len(journal.read_text().splitlines()) >= 2)
    lines = journal.read_text().splitlines()
    assert [json.loads(line)["operation"] for line in lines] == ["upload", "list"]


def test_a_busy_port_fails_to_start_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(MockProviderError, match="Address already in use"):
            MockProvider(port=taken.getsockname()[1]).start()
