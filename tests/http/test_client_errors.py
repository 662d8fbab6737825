"""A client's mistakes are 400s (or 401s), never 5xx: tampered paging cursors, U+0000 in query
parameter names, sorts and queries past their caps, malformed bearer tokens, and the database
errors only a request can cause. Each problem names what was wrong (issue 15)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

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


# -- tampered paging cursors ------------------------------------------------------------------


def unpack(link: str) -> dict[str, Any]:
    token = parse_qs(urlparse(link).query)["page[after]"][0]
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return payload


def pack(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


WRONG_EVERYWHERE: list[Any] = [
    {"x": 1},
    [1, 2],
    None,
    True,
    {"d": "NaN"},
    {"d": "-Infinity"},
    {"d": {"x": 1}},
    {"t": "2026-01-01T00:00:00"},  # no time zone
    {"t": 5},
]


def wrong_kinds(value: Any, last: bool) -> list[Any]:
    """Values of another kind than a cursor's ``value`` (a string, a time, a number)."""
    if isinstance(value, str):
        return [*WRONG_EVERYWHERE, 1, "a\u0000b"]
    if isinstance(value, dict) and "t" in value:
        return [*WRONG_EVERYWHERE, value["t"], 1]
    out_of_range = [2**64, -(2**64)] if last else []  # creation order: a 64-bit key
    return [*WRONG_EVERYWHERE, "abc", "1", *out_of_range]


SORTS = ["n", "-s,n", "_id", "-n,_id"]


@pytest.fixture
def mixed(database: Database, space: str) -> Iterator[Keyed]:
    """Documents whose sort field holds every JSON type (and is missing once)."""
    _, key = ApiKeyStore(database).add(space, readonly=False)
    with serve(database, space, "codehooks.yaml") as client:
        keyed = Keyed(client, key)
        for n in [3, 2.5, "x", True, None, [1], {"a": 1}, 10**15]:
            assert keyed.post("/things", json={"n": n, "s": str(n)}).status_code == 201
        assert keyed.post("/things", json={"s": "missing"}).status_code == 201
        yield keyed


@pytest.mark.parametrize("sort", [*SORTS, "+document.$createdDatetime"])
def test_cursors_still_page_through_every_type(mixed: Keyed, sort: str) -> None:
    url: str | None = f"/things?sort={quote(sort)}&page[size]=2"
    seen: list[str] = []
    while url is not None:
        page = mixed.get(url)
        assert page.status_code == 200, page.text
        seen += [d["s"] for d in page.json()["data"]]
        url = page.json()["links"]["next"]
    assert sorted(seen) == sorted(d["s"] for d in mixed.get("/things").json())
    assert len(seen) == 9


@pytest.mark.parametrize("sort", [*SORTS, "-document.$updatedDatetime"])
@pytest.mark.parametrize("name", ["page[after]", "page[before]"])
def test_tampered_cursors_are_400_naming_the_parameter(mixed: Keyed, sort: str, name: str) -> None:
    """Each value of a real cursor replaced by a value of another kind; values added or removed.
    These were 500s (objects and lists on both backends; NaN, naive times and booleans on
    PostgreSQL) or pages of something (text for numbers, null, on SQLite)."""
    first = mixed.get("/things", params={"sort": sort, "page[size]": "2"}).json()
    payload = unpack(first["links"]["next"])
    values = payload["v"]
    variants = [
        {**payload, "v": [*values[:i], bad, *values[i + 1 :]]}
        for i, value in enumerate(values)
        for bad in wrong_kinds(value, i == len(values) - 1)
    ]
    variants += [{**payload, "v": payload["v"][:-1]}, {**payload, "v": [*payload["v"], 1]}]
    variants += [{**payload, "v": {"0": 1}}, {**payload, "v": None}, [payload]]
    for variant in variants:
        response = mixed.get(
            "/things", params={"sort": sort, "page[size]": "2", name: pack(variant)}
        )
        assert response.status_code == 400, (variant, response.text)
        assert reasons(response) == {name: "is not a cursor of this listing"}, variant
