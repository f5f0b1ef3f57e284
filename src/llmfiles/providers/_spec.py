"""Provider specifications.

Kimi and GLM speak nearly the same Files API; every difference between them lives in a `ProviderSpec`,
so the transfer code never asks ``if provider == "kimi"``. Figures come from ../shared/PROVIDERS.md
(the providers' public documentation); where that page marks a guess, the guess is noted here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from llmfiles._errors import ConfigError, UnsupportedPurposeError

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PurposeLimit:
    """Limits for one upload purpose.

    Args:
        max_bytes: largest file accepted for this purpose.
        max_files: how many files of this purpose an account may hold (None: only the account limit).
        content_is_original: True when ``/content`` returns the stored bytes, False when it returns
            extracted text (Kimi ``file-extract``), None when ``/content`` is not offered for the purpose.
    """

    max_bytes: int
    max_files: int | None = None
    content_is_original: bool | None = None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """Everything llmfiles needs to know about one provider's Files API.

    Args:
        name: short name used in settings, metrics and logs (``"kimi"``, ``"glm"``).
        default_base_url: the public API root; the files endpoints hang below it.
        api_key_env: environment variable holding the API key.
        base_url_env: environment variable that overrides the base URL (the mock, a proxy).
        purposes: accepted purposes and their limits.
        max_files: files an account may hold in all.
        max_total_bytes: bytes an account may hold in all (None: not documented).
        has_retrieve: whether ``GET /files/{id}`` exists (GLM's is undocumented: retrieve via the list).
        list_is_paginated: whether ``GET /files`` pages with ``after``/``limit``/``has_more``.
        error_code_key: the key inside ``{"error": {...}}`` that carries the provider's code.
        rate_limit_statuses: statuses that mean "slow down" for this provider (GLM uses 503 too).
    """

    name: str
    default_base_url: str
    api_key_env: str
    base_url_env: str
    purposes: Mapping[str, PurposeLimit]
    max_files: int
    max_total_bytes: int | None
    has_retrieve: bool
    list_is_paginated: bool
    error_code_key: str
    rate_limit_statuses: frozenset[int] = field(default=frozenset({429}))

    def limit_for(self, purpose: str) -> PurposeLimit:
        """The limits for `purpose`, or `UnsupportedPurposeError` naming the accepted ones."""
        try:
            return self.purposes[purpose]
        except KeyError:
            accepted = ", ".join(sorted(self.purposes))
            raise UnsupportedPurposeError(
                f"purpose={purpose!r} is not accepted by {self.name}; use one of: {accepted}"
            ) from None


KIMI = ProviderSpec(
    name="kimi",
    default_base_url="https://api.moonshot.cn/v1",
    api_key_env="MOONSHOT_API_KEY",
    base_url_env="MOONSHOT_BASE_URL",
    purposes=MappingProxyType(
        {
            "file-extract": PurposeLimit(max_bytes=100 * MB, content_is_original=False),
            "image": PurposeLimit(max_bytes=100 * MB),
            "video": PurposeLimit(max_bytes=100 * MB),
        }
    ),
    max_files=1000,
    max_total_bytes=10 * 1024 * MB,
    has_retrieve=True,
    list_is_paginated=False,
    error_code_key="type",
)

GLM = ProviderSpec(
    name="glm",
    default_base_url="https://open.bigmodel.cn/api/paas/v4",
    api_key_env="ZHIPUAI_API_KEY",
    base_url_env="ZHIPUAI_BASE_URL",
    purposes=MappingProxyType(
        {
            "batch": PurposeLimit(max_bytes=100 * MB, max_files=1000, content_is_original=True),
            # *guess* (PROVIDERS.md): /content of file-extract is JSON with a "content" key, like Kimi's.
            "file-extract": PurposeLimit(max_bytes=50 * MB, max_files=100, content_is_original=False),
            "code-interpreter": PurposeLimit(max_bytes=20 * MB, max_files=100),
            "agent": PurposeLimit(max_bytes=20 * MB, max_files=1000),
            "voice-clone-input": PurposeLimit(max_bytes=20 * MB),
        }
    ),
    max_files=1000,
    max_total_bytes=None,
    # *guess* (PROVIDERS.md): retrieve is undocumented and commented out in the SDK.
    has_retrieve=False,
    list_is_paginated=True,
    error_code_key="code",
    rate_limit_statuses=frozenset({429, 503}),
)

PROVIDERS: Mapping[str, ProviderSpec] = MappingProxyType({spec.name: spec for spec in (KIMI, GLM)})


def provider_by_name(name: str) -> ProviderSpec:
    """The spec called `name`, or `ConfigError` listing the known ones."""
    try:
        return PROVIDERS[name.lower()]
    except KeyError:
        raise ConfigError(f"provider={name!r} is unknown; use one of: {', '.join(PROVIDERS)}") from None
