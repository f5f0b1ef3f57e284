"""The reference upload service: llmfiles embedded in an ASGI app the way a production server would.

One module per concern: `_lifespan` (what lives while the app runs), `_upload` and `_files` (the
handlers), `_auth` and `_limits` (the middleware every request passes first: a bearer token, then a
capped, timed body), `_server` (uvicorn with a deadline on request heads), `_checks` (the rollout
controller off the serving loop), `_ledger`, `_spool`, `_dedup`, `_cleaner`.

Endpoints: ``POST /upload`` (raw body or multipart field ``file``; name from ``?name=``),
``GET /files``, ``GET /files/{file_id}/content``, ``DELETE /files/{file_id}``, ``GET /metrics``, and
``GET /healthz``, the only one served without the token.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.service._auth import BearerAuth
from harness.service._config import ServiceConfig
from harness.service._files import content, delete_file, list_files
from harness.service._lifespan import Lifespan, live
from harness.service._limits import BodyLimits
from harness.service._upload import upload
from llmfiles.registry import open_registry

__all__ = ["create_app"]


async def prometheus(request: Request) -> Response:
    exposition = live(request).metrics.exposition()
    return Response(exposition, media_type="text/plain; version=0.0.4; charset=utf-8")


async def healthz(request: Request) -> Response:
    state = live(request)
    return JSONResponse(
        {"ok": True, "stage": state.config.stage, "percent": state.flags.snapshot().effective_percent}
    )


def create_app(config: ServiceConfig) -> Starlette:
    """The ASGI app for `config`; clients, logs, metrics and the registry live for the app's lifespan.

    Raises:
        ConfigError: the registry URL names no known backend.
    """
    config.workdir.mkdir(parents=True, exist_ok=True)
    # Built now, opened in the lifespan: a bad URL fails at start-up, not on the first request.
    url = config.registry_url
    registry = open_registry(url) if url is not None else None
    routes = [
        Route("/upload", upload, methods=["POST"]),
        Route("/files", list_files, methods=["GET"]),
        Route("/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/files/{file_id}/content", content, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    middleware = [
        Middleware(BearerAuth, token=config.token, open_paths=frozenset({"/healthz"})),
        Middleware(BodyLimits, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=Lifespan(config, registry))
