"""One memory measurement in a fresh process: ``python -m harness.cases._memprobe CLIENT OP ...``.

Why a subprocess per measurement: a peak is a high-water mark, and a process that already moved a 1 GB
file keeps allocator arenas and caches that would blur the next number. Imports and client construction
happen before memray starts tracking, so the peak is the transfer's own, not the cost of importing httpx.

Prints one JSON line last: ``{"peak_bytes": ..., "seconds": ..., "result": <file id or path>}``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import memray

from harness._context import API_KEY
from harness.cases._peers import DOWNLOADERS, UPLOADERS, Stored, open_peer
from llmfiles.providers import ProviderSpec, provider_by_name

__all__ = ["CLIENTS", "bench_spec", "main"]

# Peers are included where the DESIGN.md figures table has a row for them, so the report can put our
# numbers next to the same clients measured the same way in the same run. The scale case's clients
# (`harness.cases._peers`, async, several files at once) follow.
CLIENTS = {
    "upload": ("legacy", "async", "openai-path", "openai-fileobj", "httpx-fileobj", *UPLOADERS),
    "download": ("legacy", "async", "openai-content", "httpx-stream", *DOWNLOADERS),
}


def bench_spec(provider: str, max_bytes: int) -> ProviderSpec:
    """The provider's spec with the ``batch``/``file-extract`` limits raised to `max_bytes`.

    The 1 GB row of the memory table is above every real provider limit; the spec is data, so the bench
    raises it here (and the mock's own limit through its settings) instead of patching the client.
    """
    spec = provider_by_name(provider)
    purposes = {
        name: dataclasses.replace(limit, max_bytes=max(limit.max_bytes, max_bytes))
        for name, limit in spec.purposes.items()
    }
    return dataclasses.replace(spec, purposes=purposes)


Upload = Callable[[Path], Any]
Download = Callable[[str], Any]


def _base(args: argparse.Namespace) -> str:
    return f"{args.url}/kimi/v1" if args.provider == "kimi" else f"{args.url}/glm/api/paas/v4"


def _clients(args: argparse.Namespace, dest: Path) -> tuple[Upload, Download]:
    """The client named by ``args.client`` as an (upload, download) pair, built untracked."""
    spec = bench_spec(args.provider, args.max_bytes)
    base = _base(args)
    purpose = args.purpose
    if args.client == "legacy":
        from llmfiles.legacy import LegacyFilesClient

        legacy = LegacyFilesClient(spec, api_key=API_KEY, base_url=base)
        return (lambda p: legacy.upload(p, purpose=purpose).file.id), (lambda i: legacy.download(i, dest))
    if args.client == "async":
        from llmfiles.transfer import AsyncFilesClient

        runner = asyncio.Runner()
        client = runner.run(AsyncFilesClient(spec, api_key=API_KEY, base_url=base).__aenter__())
        return (
            lambda p: runner.run(client.upload(p, purpose=purpose)).file.id,
            lambda i: runner.run(client.download(i, dest)),
        )
    if args.client.startswith("openai"):
        import openai

        sdk = openai.OpenAI(api_key=API_KEY, base_url=base, max_retries=0)

        def upload_openai(path: Path) -> str:
            if args.client == "openai-path":
                return sdk.files.create(file=path, purpose=purpose).id
            with path.open("rb") as handle:
                return sdk.files.create(file=handle, purpose=purpose).id

        return upload_openai, lambda i: len(sdk.files.content(i).content)
    import httpx

    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=300)

    def upload_httpx(path: Path) -> str:
        with path.open("rb") as handle:
            response = http.post("/files", files={"file": handle}, data={"purpose": purpose})
        response.raise_for_status()
        return str(response.json()["id"])

    def download_httpx(file_id: str) -> int:
        with http.stream("GET", f"/files/{file_id}/content") as response, (dest / "out").open("wb") as out:
            response.raise_for_status()
            for chunk in response.iter_bytes(256 * 1024):
                out.write(chunk)
        return (dest / "out").stat().st_size

    return upload_httpx, download_httpx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.cases._memprobe")
    parser.add_argument("client")
    parser.add_argument("op", choices=sorted(CLIENTS))
    parser.add_argument("--url", required=True, help="the mock provider's root URL")
    parser.add_argument("--provider", default="glm")
    parser.add_argument("--purpose", default="batch")
    parser.add_argument("--file", action="append", default=[], help="file to upload (scale clients: repeat)")
    parser.add_argument(
        "--file-id", action="append", default=[], help="provider file id to download (scale clients: repeat)"
    )
    parser.add_argument(
        "--sha256", action="append", default=[], help="SHA-256 of each --file-id, in order (scale clients)"
    )
    parser.add_argument("--dest", help="download directory")
    parser.add_argument("--max-bytes", type=int, default=0)
    parser.add_argument("--trace", required=True, help="memray capture file to write")
    args = parser.parse_args(argv)
    if args.client not in CLIENTS[args.op]:
        parser.error(f"client={args.client!r} cannot {args.op}; use one of {CLIENTS[args.op]}")
    if (args.op == "upload" and not args.file) or (args.op == "download" and not args.file_id):
        parser.error(f"op={args.op!r} needs --file (upload) or --file-id (download)")
    scale = args.client in (*UPLOADERS, *DOWNLOADERS)
    if scale and args.op == "download" and len(args.sha256) != len(args.file_id):
        parser.error("a scale client's download needs one --sha256 per --file-id")
    dest = Path(args.dest) if args.dest else Path(tempfile.mkdtemp(prefix="memprobe-"))
    if scale:
        return _scale(args, dest)
    upload, download = _clients(args, dest)
    # A service has made uploads before the one we measure: pools, executor threads (an 8 MB stack each,
    # which memray counts), lazy imports all exist. One small upload first gives every client that state.
    warm = dest / "warm-up.jsonl"
    warm.write_bytes(b'{"warm": true}\n')
    upload(warm)
    warm.unlink()
    started = time.perf_counter()
    with memray.Tracker(args.trace, file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS):
        outcome = upload(Path(args.file[0])) if args.op == "upload" else download(args.file_id[0])
    _print(args, started, outcome)
    return 0


def _print(args: argparse.Namespace, started: float, outcome: object) -> None:
    seconds = time.perf_counter() - started
    peak = memray.FileReader(args.trace).metadata.peak_memory
    print(json.dumps({"peak_bytes": peak, "seconds": seconds, "result": str(outcome)}))


def _scale(args: argparse.Namespace, dest: Path) -> int:
    """A scale-case client moving every ``--file`` (or ``--file-id``) at once on one event loop."""
    warm = dest / "warm-up.jsonl"
    warm.write_bytes(b'{"warm": true}\n')
    with asyncio.Runner() as runner:
        opened = open_peer(
            args.client, _base(args), spec=bench_spec(args.provider, args.max_bytes), warm=warm
        )
        peer = runner.run(opened.__aenter__())

        async def transfer_all() -> list[object]:
            if args.op == "upload":
                return list(await asyncio.gather(*(peer.upload(Path(p)) for p in args.file)))
            stored = [Stored(i, d) for i, d in zip(args.file_id, args.sha256, strict=True)]
            return list(await asyncio.gather(*(peer.download(one, dest) for one in stored)))

        started = time.perf_counter()
        with memray.Tracker(args.trace, file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS):
            outcome = runner.run(transfer_all())
        runner.run(opened.__aexit__(None, None, None))
    warm.unlink()
    _print(args, started, outcome[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
