"""HTTP fixtures: the example blueprints served on each backend, in a fresh space per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from datastore.storage.engine import Database
from tests.support.client import CheckedClient, serve


@pytest.fixture
def events(database: Database, space: str) -> Iterator[CheckedClient]:
    """blueprints/events.yaml (Squiz style)."""
    with serve(database, space, "events.yaml") as client:
        yield client


@pytest.fixture
def codehooks(database: Database, space: str) -> Iterator[CheckedClient]:
    """blueprints/codehooks.yaml (the Codehooks seed, unchanged)."""
    with serve(database, space, "codehooks.yaml") as client:
        yield client
