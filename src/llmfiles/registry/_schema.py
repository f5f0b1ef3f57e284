"""The registry's schema, one migration per version, in SQL that SQLite and PostgreSQL both accept.

SQLite derives column affinity from the type name (``BIGINT`` -> INTEGER, ``DOUBLE PRECISION`` -> REAL),
so one text serves both backends. Never edit a released migration: append the next one.
"""

from __future__ import annotations

from collections.abc import Sequence

MIGRATIONS: Sequence[Sequence[str]] = (
    (
        """CREATE TABLE llmfiles_uploads (
            provider TEXT NOT NULL,
            purpose TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size BIGINT NOT NULL CHECK (size >= 0),
            state TEXT NOT NULL CHECK (state IN ('pending', 'ready')),
            file_id TEXT,
            refcount BIGINT NOT NULL CHECK (refcount >= 0),
            created_at DOUBLE PRECISION NOT NULL,
            last_used_at DOUBLE PRECISION NOT NULL,
            claim_token TEXT,
            lease_until DOUBLE PRECISION,
            PRIMARY KEY (provider, purpose, sha256),
            CHECK ((state = 'ready') = (file_id IS NOT NULL)),
            CHECK ((state = 'pending') = (claim_token IS NOT NULL AND lease_until IS NOT NULL))
        )""",
        # Clean-up walks unreferenced ready files oldest first; nothing else needs to find them fast.
        """CREATE INDEX llmfiles_uploads_idle ON llmfiles_uploads (provider, last_used_at, created_at)
            WHERE state = 'ready' AND refcount = 0""",
        """CREATE TABLE llmfiles_deletions (
            provider TEXT NOT NULL,
            purpose TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            file_id TEXT NOT NULL,
            size BIGINT NOT NULL CHECK (size >= 0),
            lease_until DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (provider, file_id)
        )""",
    ),
)
