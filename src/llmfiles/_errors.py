"""The one exception tree of llmfiles.

Every error the library raises is an `LLMFilesError`; every foreign error (httpx, OS, JSON) is mapped
at the boundary to the most specific class below with ``raise ... from exc``, so callers can catch
by meaning and still see the cause::

    LLMFilesError
    ├── ConfigError                  a setting or argument is invalid (names the key and the value)
    ├── ProviderError                the provider answered with an error status
    │   ├── AuthenticationError      401/403: the key is missing, wrong or lacks permission
    │   ├── NotFoundError            404: no such file at the provider
    │   ├── RateLimitedError         429 (and GLM's 503 flow control): carries ``retry_after``
    │   ├── QuotaExceededError       the account's file count or storage is used up
    │   └── ServerError              5xx from the provider
    ├── FileTooLargeError            refused before a byte was sent: larger than the purpose allows
    ├── UnsupportedPurposeError      the provider does not know the purpose
    ├── TransportError               the connection failed; nothing trustworthy came back
    │   └── TransferTimeoutError     a connect/read/write/pool timeout (also a ``TimeoutError``)
    ├── TransferIncompleteError      fewer bytes arrived than were declared
    ├── IntegrityError               the bytes arrived but their size or SHA-256 does not match
    ├── UploadMayExistError          an upload's answer was lost and whether it was stored is not settled
    ├── UnsafeFilenameError          a name would escape the target directory or cannot be made safe
    ├── RegistryError                the upload registry's database failed or refused an operation
    │   ├── ReferenceCountError      a reference was released that was never taken
    │   └── ClaimLostError           an upload claim ran out its lease and another worker took over
    └── SharedStateError             the fleet's shared flags/state (PostgreSQL) or figures (Prometheus)
                                     could not be read or written

`TransportError` and its subclasses are the errors a rollout may fall back on: the provider never gave a
verdict, so trying the other arm is safe once the dispatcher has checked no file was stored.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ClaimLostError",
    "ConfigError",
    "FileTooLargeError",
    "IntegrityError",
    "LLMFilesError",
    "NotFoundError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitedError",
    "ReferenceCountError",
    "RegistryError",
    "ServerError",
    "SharedStateError",
    "TransferIncompleteError",
    "TransferTimeoutError",
    "TransportError",
    "UnsafeFilenameError",
    "UnsupportedPurposeError",
    "UploadMayExistError",
]


class LLMFilesError(Exception):
    """Base of every error llmfiles raises; catch it to handle them all."""


class ConfigError(LLMFilesError, ValueError):
    """A setting or argument is invalid. The message quotes the key and the value; fix the configuration."""


class ProviderError(LLMFilesError):
    """The provider answered with an error status.

    Args:
        message: what went wrong and what to do next.
        provider: ``"kimi"`` or ``"glm"``.
        status: the HTTP status code.
        code: the provider's own error code or type (GLM ``"1214"``, Kimi ``"invalid_request_error"``).
        provider_message: the provider's message, verbatim.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int,
        code: str | None = None,
        provider_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.code = code
        self.provider_message = provider_message


class AuthenticationError(ProviderError):
    """The API key is missing, wrong or lacks permission (401/403). Check the key's environment variable."""


class NotFoundError(ProviderError):
    """The provider has no such file (404). It may have been deleted or never finished uploading."""


class RateLimitedError(ProviderError):
    """The provider is throttling us (429). Retried automatically; seen only after retries ran out.

    ``retry_after`` is the wait in seconds the provider asked for, or None when it named none.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class QuotaExceededError(ProviderError):
    """The account's file count or storage quota is used up. Delete old files, then upload again."""


class ServerError(ProviderError):
    """The provider failed (5xx). Retried automatically; seen only after retries ran out."""


class FileTooLargeError(LLMFilesError, ValueError):
    """The file is larger than the provider allows for this purpose; refused before a byte was sent."""


class UnsupportedPurposeError(LLMFilesError, ValueError):
    """The provider does not accept this purpose; the message lists the ones it does."""


class TransportError(LLMFilesError, ConnectionError):
    """The connection failed before a complete answer arrived (reset, refused, closed early)."""


class TransferTimeoutError(TransportError, TimeoutError):
    """A connect, read, write or pool timeout ran out. Raise the timeout or check the network."""


class TransferIncompleteError(LLMFilesError):
    """Fewer bytes arrived than the server declared. No partial file is left; retry the transfer."""


class IntegrityError(LLMFilesError):
    """The bytes arrived but their size or SHA-256 differs from what was expected. Nothing was kept."""


class UploadMayExistError(LLMFilesError):
    """An upload's answer was lost and it could not be settled whether the provider stored the file.

    Raised instead of sending a second copy or adopting a file that is not proven to be the caller's.
    ``candidate_ids`` are the provider files that may be this upload (same name and size, recent enough);
    empty when the listing used to look could not be read, in which case ``__cause__`` is that failure.
    Check the candidates (``list``, download and compare, or ``delete``) before uploading again.

    Args:
        message: what happened and what to do.
        provider: ``"kimi"`` or ``"glm"``.
        filename: the name the upload was sent under.
        candidate_ids: ids of the provider files that may be this upload.
    """

    def __init__(
        self, message: str, *, provider: str, filename: str, candidate_ids: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.filename = filename
        self.candidate_ids = candidate_ids


class UnsafeFilenameError(LLMFilesError, ValueError):
    """A filename would land outside the target directory or cannot be made safe."""


class RegistryError(LLMFilesError):
    """The upload registry's database failed (unreachable, locked too long, schema too new) or refused.

    The message names the backend and what to check; the database's own error is the ``__cause__``.
    """


class ReferenceCountError(RegistryError, ValueError):
    """A reference was released that was never taken (the count would go below zero). Nothing changed;
    pair every ``release`` with a ``claim`` answered REUSE, a ``complete`` or an ``acquire``."""


class ClaimLostError(RegistryError):
    """An upload claim ran out its lease and another worker took the content over before ``complete``.

    ``file_id`` is the provider file this worker uploaded and the registry did not record: delete it at
    the provider (or keep it and ``claim`` again), and raise ``lease_s`` if uploads take that long.
    """

    def __init__(self, message: str, *, file_id: str) -> None:
        super().__init__(message)
        self.file_id = file_id


class SharedStateError(LLMFilesError, ConnectionError):
    """The fleet's shared store (PostgreSQL flags, state, lease) or its metrics server (Prometheus) failed.

    Instances keep routing by the last flags they saw; a controller that cannot read the figures holds and
    says why. The message names the server (password masked); the driver's error is the ``__cause__``.
    """
