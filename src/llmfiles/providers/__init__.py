"""What differs between providers, as data: base URLs, paths, purposes, limits and error shapes."""

from llmfiles.providers._spec import GLM, KIMI, PROVIDERS, ProviderSpec, PurposeLimit, provider_by_name

__all__ = ["GLM", "KIMI", "PROVIDERS", "ProviderSpec", "PurposeLimit", "provider_by_name"]
