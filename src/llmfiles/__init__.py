"""llmfiles: move files to and from LLM providers' Files APIs, and roll the new path out safely."""

from llmfiles._errors import (
    AuthenticationError,
    ConfigError,
    FileTooLargeError,
    IntegrityError,
    LLMFilesError,
    NotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransferIncompleteError,
    TransferTimeoutError,
    TransportError,
    UnsafeFilenameError,
    UnsupportedPurposeError,
)
from llmfiles.providers import GLM, KIMI, ProviderSpec, PurposeLimit, provider_by_name

__all__ = [
    "GLM",
    "KIMI",
    "AuthenticationError",
    "ConfigError",
    "FileTooLargeError",
    "IntegrityError",
    "LLMFilesError",
    "NotFoundError",
    "ProviderError",
    "ProviderSpec",
    "PurposeLimit",
    "QuotaExceededError",
    "RateLimitedError",
    "ServerError",
    "TransferIncompleteError",
    "TransferTimeoutError",
    "TransportError",
    "UnsafeFilenameError",
    "UnsupportedPurposeError",
    "provider_by_name",
]
