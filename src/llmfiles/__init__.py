"""llmfiles: move files to and from LLM providers' Files APIs, and roll the new path out safely.

The top level carries what an application needs to transfer files: the async client, its results,
the filename helpers, the provider specs and the whole error tree. The rollout (`llmfiles.rollout`),
observability (`llmfiles.observe`), the upload registry (`llmfiles.registry`) and the legacy arm
(`llmfiles.legacy`) are imported from their own subpackages, so a plain transfer pulls none of them in.
"""

from llmfiles._errors import (
    AuthenticationError,
    ClaimLostError,
    ConfigError,
    FileTooLargeError,
    IntegrityError,
    LLMFilesError,
    NotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitedError,
    ReferenceCountError,
    RegistryError,
    ServerError,
    TransferIncompleteError,
    TransferTimeoutError,
    TransportError,
    UnsafeFilenameError,
    UnsupportedPurposeError,
)
from llmfiles.providers import GLM, KIMI, ProviderSpec, PurposeLimit, provider_by_name
from llmfiles.transfer import (
    AsyncFilesClient,
    FileObject,
    Progress,
    TransferSettings,
    UploadResult,
    parse_content_disposition,
    safe_join,
    sanitize_filename,
)

__all__ = [
    "GLM",
    "KIMI",
    "AsyncFilesClient",
    "AuthenticationError",
    "ClaimLostError",
    "ConfigError",
    "FileObject",
    "FileTooLargeError",
    "IntegrityError",
    "LLMFilesError",
    "NotFoundError",
    "Progress",
    "ProviderError",
    "ProviderSpec",
    "PurposeLimit",
    "QuotaExceededError",
    "RateLimitedError",
    "ReferenceCountError",
    "RegistryError",
    "ServerError",
    "TransferIncompleteError",
    "TransferSettings",
    "TransferTimeoutError",
    "TransportError",
    "UnsafeFilenameError",
    "UnsupportedPurposeError",
    "UploadResult",
    "parse_content_disposition",
    "provider_by_name",
    "safe_join",
    "sanitize_filename",
]
