"""Keyset pages of a listing sorted by an ``x-datastore-indexes`` field, through HTTP on both
backends: every document once, in order, forwards and back. On SQLite the cursor's values
come back as equalities on the sort index's columns (``storage/keyset.py``), so a value the
cursor codec did not carry exactly would skip or repeat documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from datastore.storage.engine import Database
from datastore.storage.indexes import ensure_indexes, index_specs
from tests.support.client import CheckedClient, serve

BLUEPRINT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "pages", "version": "1"},
    "paths": {
        "/items": {
            "x-datastore-indexes": ["v"],
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
        },
        "/items/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "put": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
        },
    },
}
VALUES: list[Any] = [
    0.1 + 0.2,
    0.3,
    -0.0,
    0,
    1e-7,
    2**53 + 1,
    float(2**53),
    -(2**63),  # its cursor was refused on SQLite ("not a cursor of this listing")
    1.5e18,
    "a",
    "A",
    "é",
    "",
    True,
    False,
    None,
    [1],
    {"x": 1},
]


@pytest.fixture
def items(database: Database, space: str) -> Iterator[CheckedClient]:
    ensure_indexes(database, index_specs(BLUEPRINT))
    with serve(database, space, BLUEPRINT) as client:
        for n in range(3 * len(VALUES)):  # each value three times: ties broken by creation
            body = {"key": f"d{n:03}", "v": VALUES[n % len(VALUES)]}
            assert client.put(f"/items/d{n:03}", json=body).status_code == 200
        yield client


@pytest.mark.parametrize("sort", ["%2Bdocument.v", "-document.v"])
def test_pages_of_an_indexed_sort_visit_every_document_once(
    items: CheckedClient, sort: str
) -> None:
    everything = items.get(f"/items?sort={sort}&page[size]=100").json()["data"]
    assert len(everything) == 3 * len(VALUES)
    forwards, url = [], f"/items?sort={sort}&page[size]=4"
    while url:
        page = items.get(url)
        assert page.status_code == 200, page.text
        forwards.extend(doc["key"] for doc in page.json()["data"])
        last, url = url, page.json()["links"].get("next")
    assert forwards == [doc["key"] for doc in everything]
    backwards: list[str] = []
    url = items.get(last).json()["links"].get("prev")
    while url:
        page = items.get(url).json()
        backwards[:0] = [doc["key"] for doc in page["data"]]
        url = page["links"].get("prev")
    assert backwards == forwards[: len(backwards)]
    assert len(backwards) >= len(forwards) - 4
