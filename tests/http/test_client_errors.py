"""A client's mistakes are 400s (or 401s), never 5xx: tampered paging cursors, U+0000 in query
parameter names, sorts and queries past their caps, malformed bearer tokens, and the database
errors only a request can cause. Each problem names what was wrong (issue 15)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from datastore.app import serve_blueprint_file
from datastore.auth.apikeys import ApiKeyStore
from datastore.storage.engine import Database
from datastore.storage.indexes import ensure_indexes, index_specs
from tests.http.test_documents import EVENT, problem, reasons
from tests.http.test_querying import Keyed
from tests.support.client import BLUEPRINTS, CheckedClient, serve

pytestmark = pytest.mark.citus_audit


@pytest.fixture
def seed(database: Database, space: str) -> Iterator[Keyed]:
    _, key = ApiKeyStore(database).add(space, readonly=False)
    with serve(database, space, "codehooks.yaml") as client:
        keyed = Keyed(client, key)
        for n in range(3):
            assert keyed.post("/things", json={"n": n, "s": f"s{n}"}).status_code == 201
        yield keyed


@pytest.fixture
def events(database: Database, space: str) -> Iterator[CheckedClient]:
    with serve(database, space + "e", "events.yaml") as client:
        yield client


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
    if isinstance(value, dict) and "t" in value:  # the last: past year 9999 in UTC (500)
        return [*WRONG_EVERYWHERE, value["t"], 1, {"t": "0001-01-01T00:00:00+14:00"}]
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


# -- the size of sorts and queries ------------------------------------------------------------


def too_large(response: Any, name: str) -> str:
    assert response.status_code == 400, response.text[:300]
    assert problem(response)["detail"] == "The query is too large."
    found = reasons(response)
    assert set(found) == {name}
    return found[name]


def sort_of(count: int, squiz: bool = False) -> str:
    """``count`` sort keys, alternating directions (the deepest cursor condition)."""
    if squiz:
        return ",".join(f"{'-+'[n % 2]}document.f{n}" for n in range(count))
    return ",".join(f"{'-' * (n % 2)}f{n}" for n in range(count))


def test_sorts_past_the_cap_are_400(seed: Keyed, events: CheckedClient) -> None:
    """A 300-key sort took seconds (minutes on a collection with inheritance); 1000 keys were
    refused by the database (503)."""
    for params, name in [
        ({"sort": sort_of(17)}, "sort"),
        ({"h": json.dumps({"sort": {f"f{n}": 1 for n in range(300)}})}, "h.sort"),
        ({"sort": sort_of(1000)}, "sort"),
    ]:
        assert too_large(seed.get("/things", params=params), name) == (
            f"has {len(params.get('sort', '').split(',')) if 'sort' in params else 300} "
            "sort keys; at most 16 are accepted"
        )
    too_large(events.get("/events", params={"sort": sort_of(17, squiz=True)}), "sort")
    body = {"collections": ["/events"], "sort": sort_of(17, squiz=True)}
    too_large(events.post("/__resources/collections", json=body), "sort")
    assert seed.get("/things", params={"sort": sort_of(16)}).status_code == 200


def test_a_sort_at_the_cap_pages_both_ways(database: Database, space: str) -> None:
    """16 keys of alternating directions: the cursor condition nested one level per column,
    and SQLAlchemy's recursion (32 keys: 500) or SQLite's parser stack (16 keys: 503) gave
    out on the second page."""
    _, key = ApiKeyStore(database).add(space, readonly=False)
    with serve(database, space, "codehooks.yaml") as client:
        keyed = Keyed(client, key)
        for n in range(12):
            body = {f"f{k}": (n >> (k % 4)) & 1 for k in range(16)}
            assert keyed.post("/things", json={**body, "n": n}).status_code == 201
        sort = sort_of(16)
        whole = [d["n"] for d in keyed.get("/things", params={"sort": sort}).json()]
        url: str | None = f"/things?sort={quote(sort)}&page[size]=5"
        forwards: list[int] = []
        pages: list[dict[str, Any]] = []
        while url is not None:
            page = keyed.get(url)
            assert page.status_code == 200, page.text
            pages.append(page.json())
            forwards += [d["n"] for d in pages[-1]["data"]]
            url = pages[-1]["links"]["next"]
        assert forwards == whole and len(whole) == 12
        back = keyed.get(pages[-1]["links"]["prev"]).json()
        assert [d["n"] for d in back["data"]] == whole[5:10]


def nested_or(depth: int) -> dict[str, Any]:
    query: dict[str, Any] = {"n": 1}
    for _ in range(depth):
        query = {"$or": [query, {"s": "x"}]}
    return query


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"$or": [{f"f{n}": n} for n in range(500)]}, "has 501 conditions and operators"),
        ({f"f{n}": {"$gt": 1, "$lt": 5} for n in range(34)}, "has 103 conditions and operators"),
        ({"t": {"$all": list(range(101))}}, "has 101 conditions and operators"),
        ({"t": {"$in": [[n] for n in range(100)]}}, "has 101 conditions and operators"),
        ({"$and": [{"n": {"$in": list(range(1000))}} for _ in range(5)]}, "lists 5000 values"),
        ({"n": {"$in": list(range(600))}, "s": {"$nin": list(range(401))}}, "lists 1001 values"),
    ],
)
def test_queries_past_the_cap_are_400(seed: Keyed, query: dict[str, Any], reason: str) -> None:
    """500 $or branches: SQLite refused the statement (503); twenty 1000-value $in lists took
    80 s on PostgreSQL; the others seconds of CPU building SQL."""
    params = {"q": json.dumps(query)}
    for method, path in [
        ("GET", "/things"),
        ("GET", "/things/_count"),
        ("DELETE", "/things/_byquery"),
    ]:
        response = seed.client.request(method, path, params=params, headers=seed.headers)
        assert too_large(response, "q").startswith(reason), method + path
    assert names(seed) == [0, 1, 2]


def test_queries_at_the_cap_are_answered(seed: Keyed) -> None:
    for query, found in [
        ({"$or": [{"n": 1}, *({f"f{k}": k} for k in range(98))]}, [1]),  # 100 nodes
        ({"n": {"$in": list(range(999))}, "s": {"$nin": ["x"]}}, [0, 1, 2]),  # 1000 values
        (nested_or(16), [1]),
    ]:
        response = seed.get("/things", params={"q": json.dumps(query)})
        assert response.status_code == 200, response.text[:200]
        assert sorted(d["n"] for d in response.json()) == found
    too_deep = seed.get("/things", params={"q": json.dumps(nested_or(17))})
    assert too_deep.status_code == 400


def test_url_conditions_and_filters_past_the_cap_are_400(
    seed: Keyed, events: CheckedClient
) -> None:
    conditions = {f"f{n}": "1" for n in range(101)}  # and their AND
    assert too_large(seed.get("/things", params=conditions), "query").startswith("has 102")
    values = {"n": ",".join(str(n) for n in range(1001))}  # one IN list of 1001
    assert too_large(seed.get("/things", params=values), "query").startswith("lists 1001")
    filters = ";".join(f"document.f{n}===1" for n in range(101))
    assert too_large(events.get("/events", params={"filters": filters}), "filters").startswith(
        "has 102"
    )
    body = {"collections": ["/events"], "filters": filters}
    too_large(events.post("/__resources/collections", json=body), "filters")
    assert events.get("/events", params={"filters": filters.rsplit(";", 2)[0]}).status_code == 200


@pytest.mark.parametrize("depth", [17, 1000])
def test_filters_nested_too_deep_are_400(events: CheckedClient, depth: int) -> None:
    """1000 parentheses exhausted the parser's recursion: a 500."""
    filters = "(" * depth + "document.name===x" + ")" * depth
    response = events.get("/events", params={"filters": filters})
    assert response.status_code == 400
    assert "parentheses nest deeper than 16" in reasons(response)["filters"]
    fine = "(" * 16 + "document.name===x" + ")" * 16
    assert events.get("/events", params={"filters": fine}).json() == []


def test_a_resources_sort_that_is_no_string_is_400(events: CheckedClient) -> None:
    for sort in (5, ["+document.name"], {"a": 1}):
        body = {"collections": ["/events"], "sort": sort}
        response = events.post("/__resources/collections", json=body)
        assert response.status_code == 400, response.text  # was a 500 (str methods on it)
        assert reasons(response) == {"sort": "must be a string"}


# -- malformed bearer tokens ------------------------------------------------------------------

SECRET = "client-errors-secret-0123456789abcdef"
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: Any, claims: Any = None, algorithm: str = "HS256") -> str:
    """A token signed with the right key whatever its header holds (PyJWT refuses to build
    most of these)."""

    def part(value: Any) -> str:
        return b64(value if isinstance(value, bytes) else json.dumps(value).encode())

    payload = {"sub": "u1", "exp": int(time.time()) + 600} if claims is None else claims
    signing = f"{part(header)}.{part(payload)}".encode()
    if algorithm == "HS256":
        signature = hmac.new(SECRET.encode(), signing, hashlib.sha256).digest()
    else:
        der = EC_KEY.sign(signing, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing.decode()}.{b64(signature)}"


HS = {"alg": "HS256", "typ": "JWT"}
ES = {"alg": "ES256", "typ": "JWT", "kid": "k1"}
MALFORMED = {
    # crit: PyJWT raised InvalidTokenError from get_unverified_header, which was not caught (500)
    "crit": forged({**HS, "crit": ["exp"]}),
    "crit of an unknown extension": forged({**HS, "crit": ["x"], "x": 1}),
    "crit not a list": forged({**HS, "crit": "exp"}),
    "crit empty": forged({**HS, "crit": []}),
    "kid a number": forged({**HS, "kid": 5}),
    "kid a list": forged({**HS, "kid": ["k1"]}),
    "kid an object": forged({**HS, "kid": {"k": 1}}),
    "kid null": forged({**HS, "kid": None}),
    # the rest were 401s already
    "b64 false": forged({**HS, "b64": False}),
    "b64 false, critical": forged({**HS, "b64": False, "crit": ["b64"]}),
    "header a list": forged([1, 2]),
    "header a string": forged("HS256"),
    "header null": forged(None),
    "header not JSON": forged(b"{nope"),
    "header not UTF-8": forged(b"\xff\xfe"),
    "alg a list": forged({"alg": ["HS256"]}),
    "alg an object": forged({"alg": {"HS256": 1}}),
    "header 100,000 brackets deep": forged(
        b'{"alg": "HS256", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    ),
    "claims a list": forged(HS, b"[1, 2]"),
    "claims not JSON": forged(HS, b"{nope"),
    "exp NaN": forged(HS, b'{"exp": NaN}'),
    "exp text": forged(HS, {"sub": "u1", "exp": "soon"}),
    "garbage of 1 MB": "x" * 1_000_000,
    "1 MB header, bad signature": forged({**HS, "pad": "x" * 1_000_000}).rsplit(".", 1)[0] + ".AA",
    "four parts": forged(HS) + ".x",
}


@pytest.fixture
def jwks(tmp_path: Path) -> str:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256"}]}))
    return str(path)


@pytest.mark.parametrize("key", ["secret", "jwks"])
def test_malformed_bearer_tokens_are_401(
    database: Database, space: str, jwks: str, key: str
) -> None:
    settings = {"jwt_secret": SECRET} if key == "secret" else {"jwks": jwks}
    tokens = dict(MALFORMED)
    if key == "jwks":
        tokens |= {
            "ES256 kid a number": forged({**ES, "kid": 5}, algorithm="ES256"),
            "ES256 kid a list": forged({**ES, "kid": ["k1"]}, algorithm="ES256"),
            "ES256 crit": forged({**ES, "crit": ["exp"]}, algorithm="ES256"),
            "ES256 unknown kid": forged({**ES, "kid": "k9"}, algorithm="ES256"),
        }
    with serve(database, space, "multi-user.yaml", **settings) as client:
        good = forged(HS) if key == "secret" else forged(ES, algorithm="ES256")
        bearer = {"Authorization": f"Bearer {good}"}
        assert (
            client.post("/posts", json={"ownerId": "u1", "title": "t"}, headers=bearer).status_code
            == 201
        )
        for name, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            response = client.post("/posts", json={"ownerId": "u1", "title": name}, headers=headers)
            assert response.status_code == 401, (name, response.text[:200])
            assert problem(response)["title"] == "Unauthorized", name
        assert [p["title"] for p in client.get("/posts", headers=bearer).json()] == ["t"]


# -- database errors a request causes ---------------------------------------------------------


def deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("params", "name", "reason"),
    [
        # PostgreSQL: jsonb_extract_path takes at most 100 arguments (TooManyArguments: 503)
        ({"sort": ".".join(["a"] * 150)}, "sort", "names a field 150 levels deep; at most 64"),
        ({"q": json.dumps({".".join(["a"] * 65): 1})}, "q." + ".".join(["a"] * 65), "names"),
        ({"fields": ".".join(["a"] * 65)}, "fields", "names a field 65 levels deep"),
        # SQLite: sqlite3 binds 64-bit integers at most (OverflowError: 500)
        ({"q": json.dumps({"n": {"$size": 2**63}})}, "q.n.$size", "must be at most"),
        ({"n:size": str(2**70)}, "n:size", "must be at most"),
        # orjson writes at most 254 levels: the SQL compiler raised TypeError (500)
        ({"q": json.dumps({"n": deep_list(300)})}, "q", "may be nested at most 64 levels deep"),
        ({"q": json.dumps({"n": {"$in": [deep_list(65)]}})}, "q", "may be nested at most 64"),
        # datetime.fromtimestamp overflowed (500)
        ({"q": json.dumps({"n": {"$gt": {"$date": 10**20}}})}, "q.n.$gt.$date", "is not a time"),
        ({"q": json.dumps({"n": {"$in": [{"$date": -1e300}]}})}, "q.n.$in[0].$date", "is not"),
    ],
)
def test_requests_past_the_databases_limits_are_400(
    seed: Keyed, params: dict[str, str], name: str, reason: str
) -> None:
    response = seed.get("/things", params=params)
    assert response.status_code == 400, response.text[:300]
    assert reasons(response)[name].startswith(reason)


def test_times_past_year_9999_in_utc_compare_as_no_time(events: CheckedClient) -> None:
    """A time that is in year 9999 locally but in 10000 in UTC overflowed the conversion (500);
    like any text that is no time, it matches nothing."""
    events.post("/events", json=EVENT)
    for filters in (
        "document.$createdDatetime<9999-12-31T23:59:59-14:00",
        "document.$createdDatetime>0001-01-01T00:00:00+14:00",
    ):
        response = events.get("/events", params={"filters": filters})
        assert response.status_code == 200, response.text
        assert response.json() == []


def test_elem_match_nested_16_deep(seed: Keyed, database: Database) -> None:
    """SQLite's parser stack overflowed (a 503, as if the database were down): now a 400 that
    says why. PostgreSQL answers it."""
    query: Any = {"$gt": 1}
    for _ in range(15):
        query = {"$elemMatch": query}
    response = seed.get("/things", params={"q": json.dumps({"n": query})})
    if database.dialect == "sqlite":
        assert response.status_code == 400, response.text
        assert (
            "too deeply nested for the database (parser stack overflow)"
            in (problem(response)["detail"])
        )
    else:
        assert response.status_code == 200
        assert response.json() == []


@pytest.fixture
def indexed(database: Database, space: str) -> Iterator[Keyed]:
    _, key = ApiKeyStore(database).add(space, readonly=False)
    served = serve_blueprint_file(BLUEPRINTS / "codehooks.yaml", space)
    served.document["paths"]["/{collection}"]["x-datastore-indexes"] = ["tag"]
    ensure_indexes(database, index_specs(served.document))
    with serve(database, space, served.document) as client:
        yield Keyed(client, key)


def test_indexed_values_too_large_for_the_index(indexed: Keyed, database: Database) -> None:
    """PostgreSQL's B-tree refuses an index row over 2704 bytes (program_limit_exceeded, which
    was answered 503 as if the database were down); SQLite's indexes (the same fields) have
    no such limit."""
    big = secrets.token_hex(1600)  # incompressible: 3200 bytes
    created = indexed.post("/things", json={"tag": "small"})
    assert created.status_code == 201
    url = created.headers["location"]
    answers = [
        indexed.post("/things", json={"tag": big}),  # PostgreSQL: the async path
        indexed.put(url, json={"tag": big}),  # the threaded path
        indexed.patch(url, json={"tag": big}),
        indexed.patch(url, json={"$set": {"tag": big}}),
    ]
    if database.dialect == "postgresql":
        for response in answers:
            assert response.status_code == 400, response.text[:300]
            assert problem(response)["detail"].startswith(
                "A value of an indexed field (x-datastore-indexes) is too large for its index"
            )
        assert [d["tag"] for d in indexed.get("/things").json()] == ["small"]
    else:
        assert [r.status_code for r in answers] == [201, 200, 200, 200]
