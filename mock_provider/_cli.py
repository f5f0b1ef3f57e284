"""``python -m mock_provider``: serve in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from mock_provider._rules import ProfileError, load_profile, profile_names
from mock_provider._server import Server
from mock_provider._state import MockState
from mock_provider._wire import DEFAULT_BODY_TIMEOUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mock_provider",
        description="Fake Kimi (/kimi/v1) and GLM (/glm/api/paas/v4) Files APIs with chaos on the wire. "
        "Prints the base URL as the first line on stdout.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--profile",
        default="calm",
        help=f"one of {', '.join(profile_names())}, or a TOML file (default calm)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir removed at exit")
    parser.add_argument(
        "--max-file-bytes", type=int, default=None, help="replace the per-file size limits (benchmarks)"
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        help=f"seconds a request body may stall before a 408 (default {DEFAULT_BODY_TIMEOUT:g})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        rules = load_profile(args.profile).rules
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.max_file_bytes is not None and args.max_file_bytes < 1:
        print(f"error: --max-file-bytes={args.max_file_bytes!r} must be positive", file=sys.stderr)
        return 2
    if not args.body_timeout > 0:
        print(
            f"error: --body-timeout={args.body_timeout!r} must be a positive number of seconds",
            file=sys.stderr,
        )
        return 2
    data_dir: Path = args.data_dir or Path(tempfile.mkdtemp(prefix="mock-provider-"))
    try:
        state = MockState(
            data_dir,
            rules,
            args.profile,
            args.seed,
            time.time,
            args.max_file_bytes,
            body_timeout=args.body_timeout,
        )
        return asyncio.run(_serve(Server(state, args.host, args.port)))
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


async def _serve(server: Server) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 1
    print(server.url, flush=True)
    await stop.wait()
    await server.stop()
    return 0
