"""The headers both clients send on every request: the caller's defaults plus the bearer key."""

from __future__ import annotations

from collections.abc import Mapping

from llmfiles._errors import ConfigError

__all__ = ["with_auth"]


def with_auth(default_headers: Mapping[str, str] | None, api_key: str) -> dict[str, str]:
    """`default_headers` with ``Authorization: Bearer <api_key>`` added.

    Raises:
        ConfigError: `default_headers` sets ``Authorization`` itself (the key goes in `api_key`, where it
            is kept out of reprs and errors), or a name or value is not a string.
    """
    headers = dict(default_headers or {})
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigError(f"default_headers[{name!r}]={value!r} must map a str name to a str value")
        if name.lower() == "authorization":
            raise ConfigError("default_headers sets 'Authorization'; pass the key as api_key= instead")
    return {**headers, "Authorization": f"Bearer {api_key}"}
