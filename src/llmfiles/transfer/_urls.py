"""The base URL both clients send to, checked once when the client is made."""

from __future__ import annotations

import httpx

from llmfiles._errors import ConfigError
from llmfiles.providers import ProviderSpec


def base_url_for(provider: ProviderSpec, base_url: str | None) -> str:
    """`base_url` (or the provider's default) without a trailing slash, if it is a plain http(s) URL.

    Checked here because httpx would raise its own `InvalidURL` from the constructor or, for another
    scheme, fail every request as a transport error that retries can never fix. Credentials in the URL
    are refused: the key travels as a bearer header, and a URL is shown in reprs and messages.

    Raises:
        ConfigError: not a URL, not http(s), no host, a port outside 1-65535, or user info in it (the
            message then hides it).
    """
    resolved = (base_url or provider.default_base_url).rstrip("/")
    shown = "<hidden: it has user info>" if "@" in resolved else resolved
    example = f"e.g. {provider.default_base_url!r}"
    try:
        url = httpx.URL(resolved)
    except httpx.InvalidURL as exc:
        detail = f" ({exc})" if shown == resolved else ""  # httpx's reason may quote the hidden part
        raise ConfigError(f"base_url={shown!r} is not a URL{detail}; use one like {example}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"base_url={shown!r} must be an http(s) URL with a host, {example}")
    if url.port is not None and not 0 < url.port < 65536:
        # httpx accepts the URL and fails on the first connect with an OverflowError, not a TransportError.
        raise ConfigError(f"base_url={shown!r} has port {url.port}, outside 1-65535, {example}")
    if url.userinfo:
        raise ConfigError(f"base_url={shown!r} carries credentials; remove them and pass the key as api_key=")
    return resolved
