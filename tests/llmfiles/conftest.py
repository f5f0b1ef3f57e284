"""Shared by the llmfiles suite: the real mock provider that integration tests talk to."""

from collections.abc import Iterator
from typing import Any

import pytest

import mock_provider


@pytest.fixture
def mock() -> Iterator[Any]:
    """A calm mock provider in a background thread on a free loopback port, stopped after the test."""
    with mock_provider.MockProvider("calm", seed=3) as running:
        yield running
