"""Fixtures of the reference service's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mock_provider import MockProvider


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider("calm") as provider:
        yield provider
