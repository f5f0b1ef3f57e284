"""``python -m harness.service``: serve the reference app with uvicorn on a free loopback port."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path

from harness.service._app import create_app
from harness.service._config import (
    DEFAULT_KEEP_BYTES,
    DEFAULT_KEEP_FILES,
    DEFAULT_MAX_SPOOLS,
    DEFAULT_REGISTRY,
    NO_REGISTRY,
    ServiceConfig,
)
from harness.service._server import serve
from llmfiles import ConfigError
from llmfiles.observe import configure_logging

_MIB = 1024 * 1024
#: The environment variable a token may come from (safer than ``--token``, which ``ps`` shows).
TOKEN_ENV = "LLMFILES_SERVICE_TOKEN"  # noqa: S105 (a variable name, not a secret)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.service")
    parser.add_argument("--provider-url", required=True, help="the provider's API root (mock kimi_base_url)")
    parser.add_argument("--percent", type=float, default=0.0, help="share of users on the async arm")
    parser.add_argument("--stage", default=None, help="stage name on events (default: '<percent>%%')")
    parser.add_argument("--events", type=Path, required=True, help="JSONL event log")
    parser.add_argument("--ledger", type=Path, required=True, help="JSONL of uploads answered as done")
    parser.add_argument("--workdir", type=Path, required=True, help="spool directory for request bodies")
    parser.add_argument("--legacy-in-thread", action="store_true", help="run the legacy arm off the loop")
    parser.add_argument(
        "--delete-after", action="store_true", help="give each upload's file back once answered"
    )
    parser.add_argument(
        "--registry",
        default=DEFAULT_REGISTRY,
        help=f"upload registry URL (sqlite:///PATH, postgresql://...); {DEFAULT_REGISTRY!r}: SQLite in "
        f"the workdir; {NO_REGISTRY!r}: no deduplication",
    )
    parser.add_argument(
        "--keep-files", type=int, default=DEFAULT_KEEP_FILES, help="unreferenced files the clean-up keeps"
    )
    parser.add_argument(
        "--keep-mb", type=float, default=DEFAULT_KEEP_BYTES / _MIB, help="their total MiB at most"
    )
    parser.add_argument(
        "--flags",
        default=None,
        help="flag file (.json/.toml) or a fleet's postgresql:// URL whose percentage rules, followed live",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"bearer token callers must send (default: ${TOKEN_ENV}, else generated and printed as "
        "'token: ...' on the line after the URL)",
    )
    parser.add_argument(
        "--max-spools", type=int, default=DEFAULT_MAX_SPOOLS, help="request bodies on local disk at once"
    )
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds a client has to send its request head"
    )
    parser.add_argument(
        "--body-timeout", type=float, default=10.0, help="seconds the body may pause before a 408"
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="run the rollout controller over this state file"
    )
    parser.add_argument("--check-interval", type=float, default=10.0, help="seconds between its checks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    generated = token is None
    if token is None:
        token = secrets.token_urlsafe(32)
    try:
        config = ServiceConfig(
            provider_url=args.provider_url,
            percent=args.percent,
            stage=args.stage or f"{args.percent:g}%",
            events_path=args.events,
            ledger_path=args.ledger,
            workdir=args.workdir,
            legacy_in_thread=args.legacy_in_thread,
            delete_after=args.delete_after,
            registry=args.registry,
            keep_files=args.keep_files,
            keep_bytes=int(args.keep_mb * _MIB),
            flags=args.flags,
            token=token,
            max_spools=args.max_spools,
            header_timeout_s=args.header_timeout,
            body_timeout_s=args.body_timeout,
            state_path=args.state,
            check_interval_s=args.check_interval,
        )
        app = create_app(config)
    except ConfigError as exc:
        parser.error(str(exc))  # exits 2 with the usage line: the same as any other bad option
    # Bind first so the port is known; print the URL as the first line once serving (as the mock does).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    configure_logging(file=sys.stderr)  # stdout is the start-up contract: the URL, then the token
    print(f"http://{host}:{port}", flush=True)
    if generated:
        print(f"token: {token}", flush=True)
    serve(app, sock, head_timeout_s=config.header_timeout_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
