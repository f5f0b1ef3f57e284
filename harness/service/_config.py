"""The reference service's settings, validated once when the process starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmfiles import ConfigError
from llmfiles.providers import KIMI
from llmfiles.rollout import load_transfer_settings
from llmfiles.transfer import TransferSettings

__all__ = [
    "ARM_HEADER",
    "DEFAULT_CLEANUP_CONCURRENCY",
    "DEFAULT_KEEP_BYTES",
    "DEFAULT_KEEP_FILES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_SPOOLS",
    "DEFAULT_REGISTRY",
    "MIN_TOKEN_CHARS",
    "NO_REGISTRY",
    "ServiceConfig",
]

ARM_HEADER = "X-LLMFiles-Arm"
"""Header on every provider request naming the arm that sent it (``async`` or ``legacy``)."""

DEFAULT_REGISTRY = "default"
"""`ServiceConfig.registry` value for a SQLite registry in ``workdir/registry.db``."""
NO_REGISTRY = "none"
"""`ServiceConfig.registry` value that turns deduplication off: every request uploads."""

#: Shortest bearer token accepted: 16 characters of `secrets.token_urlsafe` are 96 bits.
MIN_TOKEN_CHARS = 16
# Above the 150 users a load run drives (a load run on a busy box had 64 slots stay full for 10 s, so
# one upload got a 503): the bound is there against hostile clients, not to queue honest ones.
DEFAULT_MAX_SPOOLS = 256
#: Deletes in flight in a clean-up pass: 40 uploads/s at a 0.25 s delete needs 10; room above that.
DEFAULT_CLEANUP_CONCURRENCY = 16

# A tenth of the account below its limits: room for files the registry does not know (an upload whose
# answer was lost and never reconciled) and for uploads that go ahead when nothing more can be freed.
DEFAULT_MAX_FILES = KIMI.max_files * 9 // 10
# None would mean the provider documents no byte limit.
_ACCOUNT_BYTES = KIMI.max_total_bytes if KIMI.max_total_bytes is not None else 2**63 - 1
DEFAULT_MAX_BYTES = _ACCOUNT_BYTES * 9 // 10
# Half the account's file count: the background clean-up keeps well below `max_files`, so uploads rarely
# have to free room themselves.
DEFAULT_KEEP_FILES = KIMI.max_files // 2
# A tenth of the account's bytes: enough to reuse recent uploads, small enough that the mock's data
# directory (a load run's temp dir) stays near 1 GiB.
DEFAULT_KEEP_BYTES = _ACCOUNT_BYTES // 10


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """How the reference upload service is wired.

    Args:
        provider_url: the provider's API root (the mock's ``kimi_base_url``).
        percent: share of users routed to the async arm (the rollout stage), 0-100.
        stage: the stage name stamped on events (``"10%"``).
        events_path: the JSONL event log the gates read after a load run.
        ledger_path: one JSON line per upload the service answered as done (file id and SHA-256): what
            the nothing-lost check compares with the provider's journal.
        workdir: where request bodies are spooled before upload (and the default registry lives).
        legacy_in_thread: False runs the legacy arm on the event loop, as the old service did.
        legacy_threads: the legacy arm's thread pool (with `legacy_in_thread`): as many as spool slots,
            since every request holding a slot may be in a legacy upload. A blocking client's
            concurrency is its threads; fewer would queue the old arm behind itself when its provider
            slows down (a 2 s brownout at 40 requests/s keeps about 100 legacy uploads in flight).
        delete_after: give each upload's reference back once the caller has its answer, as a service that
            hands files to a model and is done with them would. Without a registry the provider file is
            deleted at once; with one it stays for reuse until the quota clean-up needs the room. Either
            way long load runs stay under the account's file count.
        api_key: the provider key; never logged.
        purpose: the provider purpose of every upload.
        registry: the upload registry that deduplicates uploads: `DEFAULT_REGISTRY` (SQLite in
            ``workdir/registry.db``), `NO_REGISTRY`, or a URL for `llmfiles.registry.open_registry`
            (``sqlite:///path``, ``postgresql://...``).
        keep_files: files (unreferenced ones are evicted first) the background clean-up leaves at the
            provider after a release; the rest stay for reuse.
        keep_bytes: their total bytes at most.
        max_files: files the provider may hold before an upload first deletes unreferenced ones itself.
        max_bytes: bytes the provider may hold before an upload does the same.
        cleanup_concurrency: provider deletes in flight at once in a clean-up pass. The service uploads
            a new file per request, so it must delete about as fast or it reaches `max_files` and every
            upload waits for a clean-up of its own; one at a time (about 4 a second at 0.2 s a delete)
            stalled a 40 requests/s load run within 30 s.
        transfer: the async arm's client settings; by default from ``LLMFILES_MAX_RETRIES``,
            ``LLMFILES_TIMEOUT_S`` and ``LLMFILES_MAX_CONCURRENCY`` (or their ``ASYNC_UPLOAD_*`` names),
            as `load_transfer_settings` reads them; a bad value raises `ConfigError`.
        flags: a JSON/TOML flag file (`llmfiles.rollout.FileFlagSource`) or a ``postgresql://`` URL (a
            fleet's `llmfiles.fleet.PostgresFlagSource`) whose percentage rules instead of `percent`
            while the service runs; a load run rewrites the file to switch phases, a fleet's controller
            the row to roll every instance back.
        token: the bearer token every request but ``/healthz`` must present (at least 16 characters;
            ``python -m harness.service`` generates one when none is given). Never logged.
        max_spools: request bodies on local disk at once; more uploads wait for a slot (for at most
            `body_timeout_s`, then 503), so slow or hostile clients cannot fill the disk.
        header_timeout_s: a connection that has not sent a complete request head within this time is
            answered 408 and closed (enforced by the server, `harness.service.serve`).
        body_timeout_s: longest wait for the next piece of a request body; then 408.
        state_path: the rollout controller's state file. When given, the controller checks the gates
            every `check_interval_s` in a worker thread and rolls back on its own; None runs no controller.
        check_interval_s: seconds between the controller's checks.
    """

    provider_url: str
    percent: float
    stage: str
    events_path: Path
    ledger_path: Path
    workdir: Path
    legacy_in_thread: bool = False
    legacy_threads: int = DEFAULT_MAX_SPOOLS
    delete_after: bool = False
    api_key: str = "service-key"
    purpose: str = "file-extract"
    registry: str = DEFAULT_REGISTRY
    keep_files: int = DEFAULT_KEEP_FILES
    keep_bytes: int = DEFAULT_KEEP_BYTES
    max_files: int = DEFAULT_MAX_FILES
    max_bytes: int = DEFAULT_MAX_BYTES
    cleanup_concurrency: int = DEFAULT_CLEANUP_CONCURRENCY
    transfer: TransferSettings = field(default_factory=load_transfer_settings)
    flags: str | None = None
    token: str = field(default="", repr=False)
    max_spools: int = DEFAULT_MAX_SPOOLS
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    state_path: Path | None = None
    check_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if len(self.token) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"token has {len(self.token)} characters; pass one of at least {MIN_TOKEN_CHARS} "
                "(python -m harness.service generates one when --token and LLMFILES_SERVICE_TOKEN are unset)"
            )
        for name in ("max_spools", "cleanup_concurrency", "legacy_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be at least 1")
        for name in ("header_timeout_s", "body_timeout_s", "check_interval_s"):
            value = getattr(self, name)
            if not value > 0 or value == float("inf"):
                raise ConfigError(f"{name}={value!r} must be a finite number of seconds > 0")
        if not 0 <= self.percent <= 100:
            raise ConfigError(f"percent={self.percent!r} must be within [0, 100]")
        if not self.provider_url.startswith(("http://", "https://")):
            raise ConfigError(f"provider_url={self.provider_url!r} must be an http(s) URL")
        # Each limit within [0, the one above it]: keep <= max <= the account's own limit.
        for name, value, ceiling in (
            ("max_files", self.max_files, KIMI.max_files),
            ("keep_files", self.keep_files, self.max_files),
            ("max_bytes", self.max_bytes, _ACCOUNT_BYTES),
            ("keep_bytes", self.keep_bytes, self.max_bytes),
        ):
            if not 0 <= value <= ceiling:
                raise ConfigError(f"{name}={value!r} must be within [0, {ceiling}]")
        if not self.registry:
            raise ConfigError(
                f"registry={self.registry!r} is empty; use {DEFAULT_REGISTRY!r}, {NO_REGISTRY!r} or a URL"
            )

    @property
    def max_body_bytes(self) -> int:
        """The largest file the provider accepts for `purpose`: the cap on a request's file."""
        return KIMI.limit_for(self.purpose).max_bytes

    @property
    def registry_url(self) -> str | None:
        """The registry's URL, or None when deduplication is off."""
        if self.registry == NO_REGISTRY:
            return None
        if self.registry == DEFAULT_REGISTRY:
            # Three slashes then the path: an absolute workdir gives SQLAlchemy's four-slash form.
            return f"sqlite:///{self.workdir / 'registry.db'}"
        return self.registry
