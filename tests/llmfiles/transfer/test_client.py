"""Unit tests of the async client's request shapes and retry decisions, with respx (no sockets)."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiofiles.os
import httpx
import pytest
import respx
import structlog.testing

from llmfiles import (
    GLM,
    KIMI,
    ConfigError,
    FileTooLargeError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    ServerError,
    TransferTimeoutError,
    TransportError,
    UnsupportedPurposeError,
)
from llmfiles.legacy import LegacyFilesClient
from llmfiles.transfer import AsyncFilesClient, FileObject, Obtained, TransferSettings, UploadResult

KIMI_URL = "https://kimi.test/v1"
GLM_URL = "https://glm.test/api/paas/v4"
KEY = "sk-very-secret-key"
NOW = 1_700_000_000
EMPTY_LIST = {"object": "list", "data": []}


class FakeTime:
    """Clock and sleep for the retry loop: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = float(NOW)
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def kimi(fake_time: FakeTime) -> AsyncIterator[AsyncFilesClient]:
    settings = TransferSettings(clock=fake_time.clock, sleep=fake_time.sleep, jitter=lambda: 1.0, retries=2)
    async with AsyncFilesClient(KIMI, api_key=KEY, base_url=KIMI_URL, settings=settings) as client:
        yield client


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-" + bytes(range(256)) * 64)
    return path


def file_json(
    file_id: str = "f1", *, size: int = 10, filename: str = "report.pdf", created_at: int = NOW
) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "filename": filename,
        "purpose": "file-extract",
        "status": "ok",
    }


@respx.mock
async def test_upload_request_shape(kimi: AsyncFilesClient, sample: Path) -> None:
    route = respx.post(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(200, json=file_json(size=sample.stat().st_size))
    )
    result = await kimi.upload(sample, purpose="file-extract")
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert "Transfer-Encoding" not in request.headers
    body = request.content
    assert int(request.headers["Content-Length"]) == len(body)
    assert b'name="purpose"\r\n\r\nfile-extract\r\n' in body
    assert b'name="file"; filename="report.pdf"' in body
    assert sample.read_bytes() in body
    assert result == UploadResult(
        file=FileObject.from_json(file_json(size=sample.stat().st_size)),
        sha256=hashlib.sha256(sample.read_bytes()).hexdigest(),
        size=sample.stat().st_size,
        attempts=1,
        obtained=Obtained.SENT,
    )


@respx.mock
async def test_limits_are_checked_before_a_byte_is_sent(fake_time: FakeTime, tmp_path: Path) -> None:
    route = respx.post(f"{GLM_URL}/files")
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024 + 1)
    async with AsyncFilesClient(GLM, api_key=KEY, base_url=GLM_URL) as glm:
        with pytest.raises(FileTooLargeError, match="accepts at most 20971520 for purpose='agent'"):
            await glm.upload(big, purpose="agent")
        with pytest.raises(UnsupportedPurposeError, match="purpose='image'"):
            await glm.upload(big, purpose="image")
        with pytest.raises(ConfigError, match="cannot be read"):
            await glm.upload(tmp_path / "missing.jsonl", purpose="batch")
        with pytest.raises(ConfigError, match="not a regular file"):
            await glm.upload(tmp_path, purpose="batch")
    assert not route.called


@respx.mock
async def test_a_name_that_is_not_utf8_is_refused_before_any_request(
    kimi: AsyncFilesClient, latin1_named: Path
) -> None:
    upload = respx.post(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, json=file_json()))
    with pytest.raises(ConfigError, match=r"caf\\udce9\.txt'.*not valid UTF-8.*rename the file"):
        await kimi.upload(latin1_named, purpose="file-extract")
    good = latin1_named.with_name("good.txt")
    good.write_bytes(b"g" * 10)
    # In a batch the refusal takes its own slot; the other file still goes.
    refused, sent = await kimi.upload_many([latin1_named, good], purpose="file-extract")
    assert isinstance(refused, ConfigError)
    assert isinstance(sent, UploadResult)
    assert upload.call_count == 1
    assert b'filename="good.txt"' in upload.calls.last.request.content


@respx.mock
def test_the_legacy_arm_refuses_a_name_that_is_not_utf8_the_same_way(latin1_named: Path) -> None:
    upload = respx.post(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, json=file_json()))
    legacy = LegacyFilesClient(KIMI, api_key=KEY, base_url=KIMI_URL)
    with pytest.raises(ConfigError, match=r"caf\\udce9\.txt'.*not valid UTF-8.*rename the file"):
        legacy.upload(latin1_named, purpose="file-extract")
    assert not upload.called
    assert respx.calls.call_count == 0


@respx.mock
async def test_429_honours_retry_after_then_succeeds(
    kimi: AsyncFilesClient, fake_time: FakeTime, sample: Path
) -> None:
    route = respx.post(f"{KIMI_URL}/files").mock(
        side_effect=[
            httpx.Response(
                429,
                json={"error": {"type": "rate_limit_reached_error", "message": "wait"}},
                headers={"Retry-After": "3"},
            ),
            httpx.Response(503, json={"error": {"type": "server_error", "message": "down"}}),
            httpx.Response(200, json=file_json()),
        ]
    )
    # A 503 may come from a gateway after the origin stored the file: the listing is read before resending.
    listing = respx.get(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, json=EMPTY_LIST))
    result = await kimi.upload(sample, purpose="file-extract")
    assert listing.call_count == 1
    assert route.call_count == 3
    assert result.attempts == 3
    assert fake_time.sleeps == [3.0, 1.0]  # Retry-After, then the second backoff step (jitter pinned to 1)
    bodies = [call.request.content for call in route.calls]
    assert bodies[0] == bodies[2]  # the body was sent again in full


@respx.mock
async def test_retries_run_out_with_a_typed_error(
    kimi: AsyncFilesClient, fake_time: FakeTime, sample: Path
) -> None:
    route = respx.post(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(
            429, json={"error": {"type": "engine_overloaded_error", "message": "busy"}}
        )
    )
    with pytest.raises(RateLimitedError) as caught:
        await kimi.upload(sample, purpose="file-extract")
    assert route.call_count == 3
    assert caught.value.code == "engine_overloaded_error"
    assert fake_time.sleeps == [0.5, 1.0]


@respx.mock
async def test_client_errors_are_not_retried(kimi: AsyncFilesClient, sample: Path) -> None:
    route = respx.post(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(400, json={"error": {"type": "invalid_request_error", "message": "no"}})
    )
    with pytest.raises(ProviderError, match="status=400"):
        await kimi.upload(sample, purpose="file-extract")
    assert route.call_count == 1


@respx.mock
async def test_lost_response_is_reconciled_not_resent(kimi: AsyncFilesClient, sample: Path) -> None:
    size = sample.stat().st_size
    upload = respx.post(f"{KIMI_URL}/files").mock(side_effect=httpx.RemoteProtocolError("connection reset"))
    listing = respx.get(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(
            200,
            json={
                "object": "list",
                "data": [
                    file_json("old", size=size, created_at=NOW - 3600),  # same name and size, too old
                    file_json("other", size=size + 1),
                    file_json("mine", size=size, created_at=NOW + 1),
                ],
            },
        )
    )
    result = await kimi.upload(sample, purpose="file-extract")
    assert upload.call_count == 1
    assert listing.call_count == 1
    assert (result.file.id, result.reconciled, result.attempts) == ("mine", True, 1)
    assert result.sha256 == hashlib.sha256(sample.read_bytes()).hexdigest()


@respx.mock
async def test_transport_error_with_nothing_stored_is_retried(kimi: AsyncFilesClient, sample: Path) -> None:
    upload = respx.post(f"{KIMI_URL}/files").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=file_json())]
    )
    respx.get(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, json={"object": "list", "data": []}))
    result = await kimi.upload(sample, purpose="file-extract")
    assert (upload.call_count, result.attempts, result.reconciled) == (2, 2, False)


@respx.mock
async def test_malformed_answer_is_treated_as_lost(kimi: AsyncFilesClient, sample: Path) -> None:
    size = sample.stat().st_size
    respx.post(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, content=b"{not json"))
    respx.get(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(
            200, json={"object": "list", "data": [file_json("mine", size=size, created_at=NOW + 1)]}
        )
    )
    result = await kimi.upload(sample, purpose="file-extract")
    assert (result.file.id, result.obtained) == ("mine", Obtained.RECONCILED_UNVERIFIED)


@respx.mock
async def test_timeouts_become_transfer_timeout_errors(kimi: AsyncFilesClient, sample: Path) -> None:
    respx.post(f"{KIMI_URL}/files").mock(side_effect=httpx.ReadTimeout("hang"))
    respx.get(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, json={"object": "list", "data": []}))
    with pytest.raises(TransferTimeoutError, match="timed out") as caught:
        await kimi.upload(sample, purpose="file-extract")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


@respx.mock
async def test_the_key_never_appears_in_errors_or_reprs(kimi: AsyncFilesClient, sample: Path) -> None:
    respx.post(f"{KIMI_URL}/files").mock(side_effect=httpx.ConnectError("refused"))
    respx.get(f"{KIMI_URL}/files").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransportError) as caught:
        await kimi.upload(sample, purpose="file-extract")
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert all(KEY not in repr(e) and KEY not in str(e) for e in chain)
    assert KEY not in repr(kimi)


async def test_empty_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MOONSHOT_API_KEY"):
        AsyncFilesClient(KIMI, api_key="")


@pytest.mark.parametrize("client", [AsyncFilesClient, LegacyFilesClient], ids=["async", "legacy"])
@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        pytest.param("::not a url", "base_url='::not a url' is not a URL", id="not-a-url"),
        pytest.param("ftp://x/v1", "base_url='ftp://x/v1' must be an http", id="ftp"),
        pytest.param("https:///v1", "must be an http\\(s\\) URL with a host", id="no-host"),
        pytest.param("https://u:hunter2@kimi.test/v1", "<hidden: it has user info>' carries", id="userinfo"),
        pytest.param(
            "https://u:hunter2@h:x/v1", "<hidden: it has user info>' is not a URL", id="bad-userinfo"
        ),
    ],
)
def test_bad_base_url_is_a_config_error_that_shows_no_secret(
    client: type[AsyncFilesClient | LegacyFilesClient], base_url: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        client(KIMI, api_key="sk-test", base_url=base_url)
    assert "hunter2" not in str(refused.value)


@respx.mock
async def test_glm_list_pages_and_retrieve_goes_through_the_list(fake_time: FakeTime) -> None:
    pages = respx.get(f"{GLM_URL}/files").mock(
        side_effect=[
            httpx.Response(
                200, json={"object": "list", "data": [file_json("a"), file_json("b")], "has_more": True}
            ),
            httpx.Response(200, json={"object": "list", "data": [file_json("c")], "has_more": False}),
            httpx.Response(200, json={"object": "list", "data": [file_json("c")], "has_more": False}),
        ]
    )
    async with AsyncFilesClient(GLM, api_key=KEY, base_url=GLM_URL) as glm:
        files = await glm.list(purpose="batch")
        assert [f.id for f in files] == ["a", "b", "c"]
        second = pages.calls[1].request.url.params
        assert (second["after"], second["limit"], second["purpose"]) == ("b", "100", "batch")
        with pytest.raises(NotFoundError, match="file_id='zzz'"):
            await glm.retrieve("zzz")


@respx.mock
async def test_kimi_retrieve_and_delete_quote_the_id(kimi: AsyncFilesClient) -> None:
    retrieve = respx.get(f"{KIMI_URL}/files/a%2F..%2Fb").mock(
        return_value=httpx.Response(200, json=file_json())
    )
    delete = respx.delete(f"{KIMI_URL}/files/f1").mock(
        return_value=httpx.Response(200, json={"id": "f1", "object": "file", "deleted": True})
    )
    assert (await kimi.retrieve("a/../b")).id == "f1"
    await kimi.delete("f1")
    assert retrieve.called
    assert delete.called


@respx.mock
async def test_idempotent_calls_retry_5xx(kimi: AsyncFilesClient, fake_time: FakeTime) -> None:
    route = respx.get(f"{KIMI_URL}/files").mock(
        side_effect=[
            httpx.Response(500, text="oops"),
            httpx.Response(200, json={"object": "list", "data": []}),
        ]
    )
    assert await kimi.list() == []
    assert route.call_count == 2
    route.mock(return_value=httpx.Response(502, text="bad gateway"))
    with pytest.raises(ServerError):
        await kimi.list()


@respx.mock
async def test_upload_many_reports_each_file(kimi: AsyncFilesClient, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_bytes(b"g" * 1000)
    bad.write_bytes(b"b" * 3000)

    def answer(request: httpx.Request) -> httpx.Response:
        if b'filename="bad.txt"' in request.content:
            return httpx.Response(400, json={"error": {"type": "invalid_request_error", "message": "no"}})
        return httpx.Response(200, json=file_json(filename="good.txt", size=1000))

    respx.post(f"{KIMI_URL}/files").mock(side_effect=answer)
    seen: list[tuple[int, int | None]] = []
    results = await kimi.upload_many(
        [bad, good, tmp_path / "missing.txt"],
        purpose="file-extract",
        progress=lambda d, t: seen.append((d, t)),
    )
    assert isinstance(results[0], ProviderError)
    assert isinstance(results[1], UploadResult)
    assert results[1].file.filename == "good.txt"
    assert isinstance(results[2], ConfigError)
    assert seen[-1] == (4000, 4000)


@respx.mock
async def test_list_without_data_is_malformed(kimi: AsyncFilesClient) -> None:
    respx.get(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(200, content=json.dumps({"x": 1}).encode())
    )
    with pytest.raises(TransportError, match="no 'data' array"):
        await kimi.list()


@pytest.mark.parametrize(("groups", "expected_peak"), [(("shared", "shared"), 2), (("shared", "service"), 4)])
async def test_concurrency_limit_is_shared_by_clients_of_the_process_within_a_group(
    tmp_path: Path, groups: tuple[str, str], expected_peak: int
) -> None:
    """One limit per process and group: a service's housekeeping client keeps permits of its own."""
    in_flight = peak = 0

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await request.aread()
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(200, json=file_json())

    paths = []
    for n in range(6):
        path = tmp_path / f"f{n}.txt"
        path.write_bytes(b"x" * 100)
        paths.append(path)
    first, second = (TransferSettings(max_concurrency=2, limit_group=group) for group in groups)
    transport = httpx.MockTransport(handle)
    async with (
        AsyncFilesClient(KIMI, api_key=KEY, base_url=KIMI_URL, settings=first, transport=transport) as one,
        AsyncFilesClient(KIMI, api_key=KEY, base_url=KIMI_URL, settings=second, transport=transport) as two,
    ):
        results = await asyncio.gather(
            one.upload_many(paths[:3], purpose="file-extract"),
            two.upload_many(paths[3:], purpose="file-extract"),
        )
    assert all(isinstance(r, UploadResult) for batch in results for r in batch)
    assert peak == expected_peak


@respx.mock
async def test_logs_carry_no_key_or_headers(kimi: AsyncFilesClient, sample: Path) -> None:
    respx.post(f"{KIMI_URL}/files").mock(
        side_effect=[
            httpx.Response(500, json={"error": {"type": "server_error", "message": "x"}}),
            httpx.Response(200, json=file_json()),
        ]
    )
    respx.get(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, json=EMPTY_LIST))
    with structlog.testing.capture_logs() as logs:
        await kimi.upload(sample, purpose="file-extract")
    assert [entry["event"] for entry in logs] == ["transfer.retry"]
    assert KEY not in repr(logs)
    assert "authorization" not in repr(logs).lower()


@respx.mock
async def test_reconcile_never_adopts_a_file_this_client_already_returned(
    kimi: AsyncFilesClient, sample: Path
) -> None:
    size = sample.stat().st_size
    respx.post(f"{KIMI_URL}/files").mock(
        side_effect=[httpx.Response(200, json=file_json("first", size=size)), httpx.ReadError("reset")]
    )
    respx.get(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(
            200,
            json={
                "object": "list",
                "data": [
                    file_json("first", size=size, created_at=NOW + 2),
                    file_json("second", size=size, created_at=NOW + 1),
                ],
            },
        )
    )
    first = await kimi.upload(sample, purpose="file-extract")
    second = await kimi.upload(sample, purpose="file-extract")
    assert (first.file.id, second.file.id, second.reconciled) == ("first", "second", True)


@respx.mock
async def test_a_request_that_never_left_is_resent_without_looking(
    kimi: AsyncFilesClient, sample: Path
) -> None:
    upload = respx.post(f"{KIMI_URL}/files").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=file_json())]
    )
    listing = respx.get(f"{KIMI_URL}/files").mock(return_value=httpx.Response(200, json=EMPTY_LIST))
    result = await kimi.upload(sample, purpose="file-extract")
    assert (upload.call_count, listing.call_count, result.obtained) == (2, 0, Obtained.SENT)


@respx.mock
async def test_after_a_gateway_timeout_the_listing_is_watched_through_the_grace_period(
    fake_time: FakeTime, sample: Path
) -> None:
    settings = TransferSettings(
        clock=fake_time.clock, sleep=fake_time.sleep, retries=1, reconcile_grace=3, reconcile_interval=1
    )
    size = sample.stat().st_size
    landed = file_json("late", size=size, created_at=NOW + 2)
    respx.post(f"{KIMI_URL}/files").mock(
        return_value=httpx.Response(504, json={"error": {"type": "server_error", "message": "gateway"}})
    )
    listing = respx.get(f"{KIMI_URL}/files").mock(
        side_effect=[
            httpx.Response(200, json=EMPTY_LIST),
            httpx.Response(200, json=EMPTY_LIST),
            httpx.Response(200, json={"object": "list", "data": [landed]}),
        ]
    )
    async with AsyncFilesClient(KIMI, api_key=KEY, base_url=KIMI_URL, settings=settings) as client:
        result = await client.upload(sample, purpose="file-extract")
    assert (result.file.id, result.obtained, result.attempts) == ("late", Obtained.RECONCILED_UNVERIFIED, 1)
    assert listing.call_count == 3
    assert fake_time.sleeps == [1, 1]  # two looks a reconcile_interval apart, no backoff, no second send


async def test_a_burst_of_uploads_queues_before_any_start_up_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 uploads at once with max_concurrency=2: two on the wire, two more ready, the rest not started."""
    release = asyncio.Event()
    on_wire = 0

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal on_wire
        on_wire += 1
        await request.aread()
        await release.wait()
        return httpx.Response(200, json=file_json())

    started: list[Path] = []
    real_stat = aiofiles.os.stat

    async def counting_stat(path: Path) -> Any:  # a spy: the first start-up step of every upload
        started.append(path)
        return await real_stat(path)

    monkeypatch.setattr(aiofiles.os, "stat", counting_stat)
    paths = []
    for n in range(12):
        path = tmp_path / f"f{n}.txt"
        path.write_bytes(b"x" * 100)
        paths.append(path)
    settings = TransferSettings(max_concurrency=2)
    async with AsyncFilesClient(
        KIMI, api_key=KEY, base_url=KIMI_URL, settings=settings, transport=httpx.MockTransport(handle)
    ) as client:
        uploads = asyncio.gather(*(client.upload(p, purpose="file-extract") for p in paths))

        async def two_on_the_wire() -> None:
            while on_wire < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(two_on_the_wire(), 10)
        await asyncio.sleep(0.2)  # time for any upload the gate let through to reach its stat
        assert (on_wire, len(started)) == (2, 4)
        release.set()
        results = await uploads
    assert len(results) == 12
    assert sorted(started) == sorted(paths)
