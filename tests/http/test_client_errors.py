"""A client's mistakes are 400s (or 401s), never 5xx: tampered paging cursors, U+0000 in query
parameter names, sorts and queries past their caps, malformed bearer tokens, and the database
errors only a request can cause. Each problem names what was wrong (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from datastore.auth.apikeys import ApiKeyStore
from datastore.storage.engine import Database
from tests.http.test_documents import reasons
from tests.http.test_querying import Keyed
from tests.support.client import serve


@pytest.fixture
def seed(database: Database, space: str) -> Iterator[Keyed]:
    _, key = ApiKeyStore(database).add(space, readonly=False)
    with serve(database, space, "codehooks.yaml") as client:
        keyed = Keyed(client, key)
        for n in range(3):
            assert keyed.post("/things", json={"n": n, "s": f"s{n}"}).status_code == 201
        yield keyed


def names(seed: Keyed) -> list[int]:
    return sorted(d["n"] for d in seed.get("/things").json())


# -- U+0000 in query parameter names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        # A URL condition's name is a field: on PostgreSQL the NUL cut the SQL text (500), on
        # SQLite the statement was refused (503).
        ("GET", "/things", "a%00b=1", None),
        ("GET", "/things", "a%00b>1", None),
        ("GET", "/things", "!a%00b", None),
        ("GET", "/things", "a%00b:in=1,2", None),
        ("GET", "/things/_count", "a%00b=1", None),
        ("PATCH", "/things/_byquery", "a%00b=1", {"$set": {"x": 1}}),
        ("DELETE", "/things/_byquery", "a%00b=1", None),
        ("GET", "/things", "sort=a%00b", None),
        ("GET", "/things", "page[size%00]=1", None),
        ("GET", "/keyv", "prefix=a%00", None),  # PostgreSQL: 400 from the driver; SQLite: 200
        ("GET", "/keyv", "pre%00fix=a", None),
        ("PUT", "/keyv/k", "ttl%00=1", {"value": 1}),  # was ignored: 200
        ("GET", "/things/x", "a%00=1", None),
    ],
)
def test_nul_anywhere_in_the_query_is_400(
    seed: Keyed, method: str, path: str, query: str, body: object
) -> None:
    response = seed.client.request(method, f"{path}?{query}", json=body, headers=seed.headers)
    assert response.status_code == 400, response.text
    assert reasons(response) == {"query": "contains a NUL character (%00)"}
    assert names(seed) == [0, 1, 2]
    assert seed.get("/keyv/k").status_code == 404
