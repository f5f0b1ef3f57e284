"""The public surface is exactly what `__all__` says."""

import mock_provider


def test_all_is_pinned() -> None:
    assert mock_provider.__all__ == [
        "Error",
        "Hang",
        "Latency",
        "LostResponse",
        "Malformed",
        "Match",
        "MockProvider",
        "MockProviderError",
        "Partial",
        "Profile",
        "ProfileError",
        "Reset",
        "Rule",
        "Slow",
        "StoredThenError",
        "Trigger",
        "load_profile",
        "profile_names",
    ]
    for name in mock_provider.__all__:
        assert getattr(mock_provider, name) is not None
