"""The data every target serves: one item schema, the seed rows (made by PostgreSQL itself with
``generate_series``, so a million documents load in seconds), and the request bodies."""

from __future__ import annotations

import json
import random
import urllib.parse
from typing import Any

from bench.http.wrk import Load

CATEGORIES = 200
OWNERS = 100
NOTES = 10_000
JWT_USER = "u7"

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "category", "rank"],
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "category": {"type": "string", "pattern": "^cat[0-9]+$"},
        "rank": {"type": "integer", "minimum": 0},
        "price": {"type": "number", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
        "active": {"type": "boolean"},
        "owner": {"type": "string", "maxLength": 100},
        "description": {"type": "string", "maxLength": 4000},
        "counter": {"type": "integer"},
        "updated": {"type": "string", "format": "date-time"},
    },
}
"""Ten properties: the schema of scenario 3's POST on every target."""


def item_sql(n: str) -> str:
    """A SQL expression building item number ``n`` (an integer SQL expression) as JSONB."""
    n = f"({n})::bigint"  # n * 7919 overflows a 4-byte integer past n = 271,000
    return (
        f"jsonb_build_object('name', 'item-' || {n}, 'category', 'cat' || mod({n}, {CATEGORIES}),"
        f" 'rank', mod({n} * 7919, 1000003), 'price', mod({n} * 7919, 10000) / 100.0,"
        f" 'tags', jsonb_build_array('a', 'b'), 'active', mod({n}, 2) = 0,"
        f" 'owner', 'u' || mod({n}, {OWNERS}), 'description', repeat('x', 120), 'counter', 0,"
        f" 'updated', '2026-11-23T10:00:00Z')"
    )


def doc_id(n: int) -> str:
    """The id of seeded document ``n`` (matching ``doc_id_sql``)."""
    return f"d{n:07}"


def doc_id_sql(n: str) -> str:
    return f"'d' || lpad({n}::text, 7, '0')"


def post_body() -> dict[str, Any]:
    """The 1 KB document of scenario 3 (about 1,000 bytes of JSON, ten properties)."""
    body: dict[str, Any] = {
        "name": "a posted item",
        # Outside the seeded categories (cat0..cat199) and ranks (< 1,000,003): posted items
        # must not change what the list and page scenarios read (page 500 would otherwise
        # be full of them, 1 KB each, against page 1's 300-byte seeded items).
        "category": "cat999",
        "rank": 2_000_000,
        "price": 19.5,
        "tags": ["bench", "posted", "wrk"],
        "active": True,
        "owner": JWT_USER,
        "description": "",
        "counter": 0,
        "updated": "2026-11-23T10:00:00Z",
    }
    body["description"] = "y" * (1000 - len(json.dumps(body)))
    return body


def note_ids_of(user: str, count: int = NOTES) -> list[int]:
    """The numbers of the seeded notes owned by ``user`` (note n is owned by u<n % OWNERS>)."""
    owner = int(user[1:])
    return [n for n in range(1, count + 1) if n % OWNERS == owner]


def shared_loads(rng: random.Random, documents: int, headers: dict[str, str]) -> dict[str, Load]:
    """The requests the datastore and the floor share (same paths, same bodies): GET by id
    over 5,000 random seeded documents, the JWT user's notes (``headers`` carry the token),
    the POST, the PATCH ``$inc`` over 1,000 documents, and equality lists over every
    category."""
    json_headers = {"Content-Type": "application/json"}
    return {
        "get": Load("GET", [f"/items/{doc_id(rng.randint(1, documents))}" for _ in range(5000)]),
        "get-jwt": Load("GET", [f"/notes/{doc_id(n)}" for n in note_ids_of(JWT_USER)], headers),
        "post": Load("POST", ["/items"], json_headers, json.dumps(post_body()).encode()),
        "patch-inc": Load(
            "PATCH",
            [f"/items/{doc_id(n)}" for n in range(1, 1001)],
            json_headers,
            b'{"$inc": {"counter": 1}}',
        ),
        "list-eq": Load("GET", list_paths("items")),
    }


def list_paths(collection: str) -> list[str]:
    """``GET /<collection>?q={"category": ...}&limit=20`` for every category."""
    return [
        f"/{collection}?"
        + urllib.parse.urlencode({"q": json.dumps({"category": f"cat{c}"}), "limit": 20})
        for c in range(CATEGORIES)
    ]
