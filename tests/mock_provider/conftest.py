"""Fixtures: a real mock server on a loopback port, and a client that talks to it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mock_provider import MockProvider
from tests.mock_provider._helpers import KEY


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as server:
        yield server


@pytest.fixture
def client(mock: MockProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, headers=KEY, timeout=10) as http:
        yield http
