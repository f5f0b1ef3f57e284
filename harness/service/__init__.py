"""The reference upload service (ASGI): llmfiles embedded as a production server would embed it.

Run it with ``python -m harness.service --provider-url URL --percent 10 ...``; it prints its base URL as
the first line on stdout, like the mock provider (then ``token: ...`` when it generated its bearer token),
and serves until SIGINT/SIGTERM. ``--registry URL`` picks the upload registry that deduplicates uploads
(SQLite in ``--workdir`` by default, ``none`` for off).
"""

from harness.service._app import create_app
from harness.service._config import DEFAULT_REGISTRY, NO_REGISTRY, ServiceConfig

__all__ = ["DEFAULT_REGISTRY", "NO_REGISTRY", "ServiceConfig", "create_app"]
