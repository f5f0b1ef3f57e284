"""The clients the scale case compares, each behind the same two calls: upload a path, download an id.

Every client is built with its library's defaults except a timeout long enough for a loaded machine
(httpx's own 5 s default would time out under 150 uploads on two cores and measure the timeout, not the
client). Each is opened and warmed by one small request before anything is timed, as a service's client
would be. The memory probe builds the same objects in its subprocess, so the curves and the probe
measure the same code.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import httpx

from harness._context import API_KEY
from llmfiles.providers import GLM, ProviderSpec
from llmfiles.transfer import AsyncFilesClient

__all__ = [
    "DOWNLOADERS",
    "OURS",
    "PURPOSE",
    "UPLOADERS",
    "UVLOOP_SUFFIX",
    "Peer",
    "Stored",
    "children_cpu_s",
    "open_peer",
]

#: GLM's ``batch``: its ``/content`` serves the stored bytes (Kimi's serves extracted text), and the
#: SDKs' Literal types accept it.
PURPOSE: Any = "batch"
_TIMEOUT_S = 120.0
_READ = 256 * 1024
"""Read size of httpx's streamed download (``aiter_bytes``)."""


class Stored(NamedTuple):
    """A file at the provider, as a download asks for it: its id and the SHA-256 of its bytes.

    Ours checks every download against the hash (``expected_sha256``), so the curves measure it with
    SHA-256 on, as its uploads are; the peers have no such check and ignore it.
    """

    id: str
    sha256: str


class Peer(Protocol):
    """One client, opened: what the scale case and the memory probe drive."""

    async def upload(self, path: Path) -> str:
        """Upload `path`; return the provider's file id."""
        ...

    async def download(self, stored: Stored, dest: Path) -> int:
        """Download `stored` into directory `dest`; return the bytes written."""
        ...


class _Ours:
    def __init__(self, spec: ProviderSpec, base: str, client: type[AsyncFilesClient]) -> None:
        self._client = client(spec, api_key=API_KEY, base_url=base)

    async def upload(self, path: Path) -> str:
        return (await self._client.upload(path, purpose=PURPOSE)).file.id

    async def download(self, stored: Stored, dest: Path) -> int:
        landed = await self._client.download(
            stored.id, dest, filename=f"{stored.id}.bin", overwrite=True, expected_sha256=stored.sha256
        )
        # A stat of the file just renamed, on the loop: the peers count what they wrote for free, and
        # a worker hop here would charge ours for the harness's bookkeeping.
        return landed.stat().st_size

    async def aclose(self) -> None:
        await self._client.aclose()


class _OpenAI:
    """AsyncOpenAI given an open file object (it reads it itself)."""

    def __init__(self, base: str) -> None:
        import openai  # here, not at the top: 0.8 s of imports every memory probe process would pay

        self._sdk = openai.AsyncOpenAI(api_key=API_KEY, base_url=base, max_retries=0, timeout=_TIMEOUT_S)

    async def upload(self, path: Path) -> str:
        with path.open("rb") as handle:
            return (await self._sdk.files.create(file=handle, purpose=PURPOSE)).id

    async def download(self, stored: Stored, dest: Path) -> int:
        raise NotImplementedError("the scale case downloads with ours, httpx and curl only")

    async def aclose(self) -> None:
        await self._sdk.close()


class _Httpx:
    """httpx.AsyncClient: multipart from a file object; downloads streamed into a file."""

    def __init__(self, base: str) -> None:
        self._http = httpx.AsyncClient(
            base_url=base + "/", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=_TIMEOUT_S
        )

    async def upload(self, path: Path) -> str:
        with path.open("rb") as handle:
            response = await self._http.post("files", files={"file": handle}, data={"purpose": PURPOSE})
        response.raise_for_status()
        return str(response.json()["id"])

    async def download(self, stored: Stored, dest: Path) -> int:
        written = 0
        async with self._http.stream("GET", f"files/{stored.id}/content") as response:
            response.raise_for_status()
            with (dest / f"{stored.id}.bin").open("wb") as out:
                async for chunk in response.aiter_bytes(_READ):
                    written += out.write(chunk)
        return written

    async def aclose(self) -> None:
        await self._http.aclose()


class _Aiohttp:
    """aiohttp.ClientSession with its MultipartWriter over a file object."""

    def __init__(self, base: str) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._base = base
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {API_KEY}"}, timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S)
        )

    async def upload(self, path: Path) -> str:
        with path.open("rb") as handle, self._aiohttp.MultipartWriter("form-data") as writer:
            writer.append(PURPOSE).set_content_disposition("form-data", name="purpose")
            part = writer.append(handle, {"Content-Type": "application/octet-stream"})
            part.set_content_disposition("form-data", name="file", filename=path.name)
            async with self._session.post(f"{self._base}/files", data=writer) as response:
                response.raise_for_status()
                return str((await response.json())["id"])

    async def download(self, stored: Stored, dest: Path) -> int:
        raise NotImplementedError("the scale case downloads with ours, httpx and curl only")

    async def aclose(self) -> None:
        await self._session.close()


class _Curl:
    """One curl process per transfer: the native ceiling (no event loop, so no stall figure)."""

    def __init__(self, base: str) -> None:
        self._curl = shutil.which("curl") or "curl"
        self._base = base

    async def _run(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            self._curl, "-sS", "--fail", "-H", f"Authorization: Bearer {API_KEY}", *args,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"curl {args[-1]!r} exited with {process.returncode}")
        return out.decode()

    async def upload(self, path: Path) -> str:
        answer = await self._run("-F", f"file=@{path}", "-F", f"purpose={PURPOSE}", f"{self._base}/files")
        return str(json.loads(answer)["id"])

    async def download(self, stored: Stored, dest: Path) -> int:
        target = dest / f"{stored.id}.bin"
        await self._run("-o", str(target), f"{self._base}/files/{stored.id}/content")
        return target.stat().st_size

    async def aclose(self) -> None:
        return None


#: ``factory(spec, base, ours)``: `ours` is the class that plays ``ours``; the peers ignore it.
_Factory = Callable[[ProviderSpec, str, type[AsyncFilesClient]], Any]

_FACTORIES: dict[str, _Factory] = {
    "ours": _Ours,
    "AsyncOpenAI, file object": lambda _spec, base, _ours: _OpenAI(base),
    "httpx, file object": lambda _spec, base, _ours: _Httpx(base),
    "aiohttp, MultipartWriter": lambda _spec, base, _ours: _Aiohttp(base),
    "httpx, streaming": lambda _spec, base, _ours: _Httpx(base),
    "curl": lambda _spec, base, _ours: _Curl(base),
}
OURS = "ours"
#: A client name with this suffix is ours on a uvloop event loop (the ``uvloop`` extra).
UVLOOP_SUFFIX = ", uvloop"
#: Who uploads in the curves, ours first; curl has no loop, so it has wall and CPU figures only.
UPLOADERS = ("ours", "AsyncOpenAI, file object", "httpx, file object", "aiohttp, MultipartWriter", "curl")
#: Who downloads in the curves.
DOWNLOADERS = ("ours", "httpx, streaming", "curl")


@asynccontextmanager
async def open_peer(
    name: str,
    base: str,
    *,
    spec: ProviderSpec = GLM,
    warm: Path | None = None,
    ours: type[AsyncFilesClient] = AsyncFilesClient,
) -> AsyncIterator[Peer]:
    """Client `name` (one of `UPLOADERS` or `DOWNLOADERS`) talking to `base`, warmed with `warm` if given.

    The warm-up upload opens the pool and pays lazy imports before anything is timed. `ours` is the
    client class that plays ``ours`` (the self-check hands a broken one; the peers ignore it).
    """
    if name not in _FACTORIES:
        raise KeyError(f"name={name!r} is not a scale client; known: {', '.join(_FACTORIES)}")
    peer = _FACTORIES[name](spec, base, ours)
    try:
        if warm is not None:
            await peer.upload(warm)
        yield peer
    finally:
        await peer.aclose()


def children_cpu_s() -> float:
    """CPU seconds (user + system) of every child process waited for so far (curl's share)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
