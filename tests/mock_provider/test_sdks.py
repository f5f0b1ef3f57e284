"""The official SDKs against the mock: the calm path end to end, and their own exceptions under faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
import zhipuai
from zhipuai.core import _errors as zhipu_errors

from mock_provider import MockProvider


@pytest.fixture
def kimi(mock: MockProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="sk-test", base_url=mock.kimi_base_url, max_retries=0, timeout=5) as client:
        yield client


@pytest.fixture
def glm(mock: MockProvider) -> Iterator[zhipuai.ZhipuAI]:
    # zhipuai >= 2.1 sends the key itself as the bearer token by default (disable_token_cache=True);
    # said explicitly so a changed default cannot turn it into a JWT the mock would still accept silently.
    client = zhipuai.ZhipuAI(
        api_key="sk-test", base_url=mock.glm_base_url, max_retries=0, disable_token_cache=True
    )
    yield client
    client.close()


def test_openai_sdk_full_cycle_against_kimi(kimi: openai.OpenAI) -> None:
    created = kimi.files.create(file=("notes.txt", b"the text"), purpose="file-extract")  # type: ignore[arg-type]

    assert [f.id for f in kimi.files.list()] == [created.id]
    assert kimi.files.retrieve(created.id).bytes == len(b"the text")
    assert '"content": "the text"' in kimi.files.content(created.id).text
    assert kimi.files.delete(created.id).deleted is True
    assert list(kimi.files.list()) == []


def test_zhipuai_sdk_full_cycle_against_glm(glm: zhipuai.ZhipuAI) -> None:
    data = b'{"custom_id": "1"}\n'
    created = glm.files.create(file=("in.jsonl", data), purpose="batch")

    listing = glm.files.list()
    assert [f.id for f in listing.data] == [created.id]
    assert listing.has_more is False
    assert glm.files.content(created.id).content == data
    assert glm.files.delete(created.id).deleted is True
    assert glm.files.list().data == []


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        pytest.param({"kind": "error", "status": 500}, openai.InternalServerError, id="500"),
        pytest.param({"kind": "error", "status": 429, "retry_after": 0}, openai.RateLimitError, id="429"),
        pytest.param({"kind": "error", "status": 401}, openai.AuthenticationError, id="401"),
        pytest.param({"kind": "reset"}, openai.APIConnectionError, id="reset"),
        pytest.param({"kind": "partial"}, openai.APIConnectionError, id="partial"),
    ],
)
def test_openai_sdk_raises_its_own_exceptions(
    mock: MockProvider, kimi: openai.OpenAI, effect: dict[str, Any], expected: type[Exception]
) -> None:
    mock.set_rules([{"effect": effect}])

    with pytest.raises(expected):
        kimi.files.list()


def test_openai_sdk_retries_through_a_first_failure(mock: MockProvider) -> None:
    mock.set_rules([{"trigger": {"first": 1}, "effect": {"kind": "error", "status": 503}}])

    with openai.OpenAI(api_key="sk-test", base_url=mock.kimi_base_url, max_retries=2) as client:
        assert list(client.files.list()) == []
    assert [e["status"] for e in mock.journal()] == [503, 200]


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        pytest.param({"kind": "error", "status": 500}, zhipu_errors.APIInternalError, id="500"),
        pytest.param({"kind": "error", "status": 429}, zhipu_errors.APIReachLimitError, id="429"),
        pytest.param({"kind": "error", "status": 503}, zhipu_errors.APIServerFlowExceedError, id="503"),
        pytest.param({"kind": "error", "status": 401}, zhipu_errors.APIAuthenticationError, id="401"),
        pytest.param({"kind": "reset"}, zhipu_errors.APIConnectionError, id="reset"),
    ],
)
def test_zhipuai_sdk_raises_its_own_exceptions(
    mock: MockProvider, glm: zhipuai.ZhipuAI, effect: dict[str, Any], expected: type[Exception]
) -> None:
    mock.set_rules([{"effect": effect}])

    with pytest.raises(expected):
        glm.files.list()
