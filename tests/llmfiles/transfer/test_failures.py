import httpx
import pytest

from llmfiles import (
    GLM,
    KIMI,
    AuthenticationError,
    NotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransferTimeoutError,
    TransportError,
)
from llmfiles.providers import ProviderSpec
from llmfiles.transfer._failures import provider_error, transport_error


def kimi_body(kind: str, message: str) -> dict[str, object]:
    return {"error": {"type": kind, "message": message}}


def glm_body(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("spec", "status", "body", "cls", "code"),
    [
        pytest.param(
            KIMI,
            401,
            kimi_body("invalid_authentication_error", "bad key"),
            AuthenticationError,
            "invalid_authentication_error",
            id="kimi-401",
        ),
        pytest.param(
            KIMI,
            404,
            kimi_body("resource_not_found_error", "no file"),
            NotFoundError,
            "resource_not_found_error",
            id="kimi-404",
        ),
        pytest.param(
            KIMI,
            429,
            kimi_body("rate_limit_reached_error", "slow down"),
            RateLimitedError,
            "rate_limit_reached_error",
            id="kimi-429",
        ),
        pytest.param(
            KIMI,
            400,
            kimi_body("invalid_request_error", "exceeded the max file count 1000"),
            QuotaExceededError,
            "invalid_request_error",
            id="kimi-quota",
        ),
        pytest.param(
            KIMI, 500, kimi_body("server_error", "boom"), ServerError, "server_error", id="kimi-500"
        ),
        pytest.param(
            KIMI,
            400,
            kimi_body("invalid_request_error", "File size is zero"),
            ProviderError,
            "invalid_request_error",
            id="kimi-400",
        ),
        pytest.param(GLM, 401, glm_body("1002", "invalid token"), AuthenticationError, "1002", id="glm-401"),
        pytest.param(GLM, 503, glm_body("1305", "flow"), RateLimitedError, "1305", id="glm-503-flow"),
        pytest.param(GLM, 429, glm_body("1113", "arrears"), QuotaExceededError, "1113", id="glm-arrears"),
        pytest.param(GLM, 500, glm_body("500", "internal"), ServerError, "500", id="glm-500"),
        pytest.param(
            KIMI, 503, kimi_body("server_error", "down"), ServerError, "server_error", id="kimi-503"
        ),
    ],
)
def test_error_bodies_map_to_the_tree(
    spec: ProviderSpec, status: int, body: dict[str, object], cls: type[ProviderError], code: str
) -> None:
    error = provider_error(spec, httpx.Response(status, json=body), now=0.0)
    assert type(error) is cls
    assert (error.provider, error.status, error.code) == (spec.name, status, code)
    assert error.provider_message == body["error"]["message"]  # type: ignore[index]
    assert f"status={status}" in str(error)


def test_retry_after_is_carried() -> None:
    response = httpx.Response(429, json=kimi_body("x", "y"), headers={"Retry-After": "7"})
    error = provider_error(KIMI, response, now=0.0)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 7.0


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b"", b"[1, 2]", b'{"error": "flat"}'])
def test_unreadable_bodies_still_give_typed_errors(body: bytes) -> None:
    error = provider_error(GLM, httpx.Response(502, content=body), now=0.0)
    assert isinstance(error, ServerError)
    assert error.code is None


def test_provider_message_is_bounded() -> None:
    error = provider_error(KIMI, httpx.Response(400, json=kimi_body("x", "m" * 10_000)), now=0.0)
    assert len(str(error)) < 600


def test_transport_errors_are_mapped_by_kind() -> None:
    timeout = transport_error(KIMI, httpx.ReadTimeout("slow"), action="upload a")
    assert isinstance(timeout, TransferTimeoutError)
    assert isinstance(timeout, TimeoutError)
    broken = transport_error(KIMI, httpx.RemoteProtocolError("closed"), action="upload a")
    assert type(broken) is TransportError
    assert "upload a on kimi failed" in str(broken)
