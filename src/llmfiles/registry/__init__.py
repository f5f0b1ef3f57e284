"""The upload registry: dedup by SHA-256 per provider, reference counts and quota clean-up.

SQLite (one WAL file) by default, PostgreSQL when several hosts share it; all of it async. The claim
protocol is described in `UploadRegistry`'s module; `ensure_uploaded` runs it for a caller::

    async with open_registry("sqlite:///registry.db") as registry:
        key = ContentKey("kimi", "file-extract", sha256)
        record = await ensure_uploaded(registry, key, size=size, upload=upload_and_return_file_id)
        ...
        await registry.release(key)
        await clean_up(registry, "kimi", delete=client.delete, max_files=KIMI.max_files)
"""

from llmfiles._errors import ClaimLostError, ReferenceCountError, RegistryError
from llmfiles.registry._cleanup import CleanupResult, clean_up
from llmfiles.registry._ensure import ensure_uploaded
from llmfiles.registry._open import open_registry
from llmfiles.registry._postgres import PostgresRegistry, redact_dsn
from llmfiles.registry._protocol import DEFAULT_LEASE_S, UploadRegistry
from llmfiles.registry._records import (
    Claim,
    ClaimDecision,
    CleanupItem,
    ContentKey,
    RecordState,
    UploadRecord,
    Usage,
)
from llmfiles.registry._sqlite import SQLiteRegistry

__all__ = [
    "DEFAULT_LEASE_S",
    "Claim",
    "ClaimDecision",
    "ClaimLostError",
    "CleanupItem",
    "CleanupResult",
    "ContentKey",
    "PostgresRegistry",
    "RecordState",
    "ReferenceCountError",
    "RegistryError",
    "SQLiteRegistry",
    "UploadRecord",
    "UploadRegistry",
    "Usage",
    "clean_up",
    "ensure_uploaded",
    "open_registry",
    "redact_dsn",
]
