"""Numbers and text stay exact (issue 15, item 7): arithmetic that would leave the numbers a body
may carry is refused, ids that are not UTF-8 are refused, and odd characters in field names
give the same answers on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from datastore.auth.apikeys import ApiKeyStore
from datastore.storage.engine import Database
from tests.http.test_documents import reasons
from tests.http.test_querying import Keyed
from tests.support.client import serve

pytestmark = pytest.mark.citus_audit

BIG = 2**63 - 1


@pytest.fixture
def things(database: Database, space: str) -> Iterator[Keyed]:
    _, key = ApiKeyStore(database).add(space, readonly=False)
    with serve(database, space, "codehooks.yaml") as client:
        yield Keyed(client, key)


def _stored(things: Keyed) -> list[dict[str, object]]:
    listed = things.get("/things", params={"sort": "_id"})
    assert listed.status_code == 200, listed.text
    return [{k: v for k, v in d.items() if k != "_id"} for d in listed.json()]


# -- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "step", "reason"),
    [
        (BIG, 1, "is an integer outside the 64-bit range"),
        (-BIG - 1, -1, "is an integer outside the 64-bit range"),
        (1e308, 1e308, "is not a finite number"),
        (-1e308, -1e308, "is not a finite number"),
    ],
)
def test_inc_past_what_a_body_may_hold_is_refused(
    things: Keyed, start: float, step: float, reason: str
) -> None:
    created = things.post("/things", json={"_id": "t1", "n": start})
    assert created.status_code == 201, created.text
    refused = things.patch("/things/t1", json={"$inc": {"n": step}})
    assert refused.status_code == 400, refused.text
    assert reasons(refused)["$inc.n"] == f"would overflow: the result {reason}" + (
        f" ({-BIG - 1} to {BIG})" if "64-bit" in reason else ""
    )
    assert things.get("/things/t1").json()["n"] == start  # nothing written
    back = things.patch("/things/t1", json={"$inc": {"n": -step}})
    assert back.status_code == 200  # the way back stays open


def test_inc_up_to_the_limit_is_kept_exactly(things: Keyed) -> None:
    things.post("/things", json={"_id": "t1", "n": BIG - 2})
    assert things.patch("/things/t1", json={"$inc": {"n": 2}}).json()["n"] == BIG
    assert things.get("/things/t1").json()["n"] == BIG
    assert things.patch("/things/t1", json={"$inc": {"m": -BIG - 1}}).json()["m"] == -BIG - 1


def test_inc_by_query_that_overflows_anywhere_writes_nothing(things: Keyed) -> None:
    for index, n in enumerate([1, 2, BIG - 5, 3]):
        assert things.post("/things", json={"_id": f"t{index}", "n": n}).status_code == 201
    refused = things.patch(
        "/things/_byquery", params={"q": json.dumps({"n": {"$gte": 0}})}, json={"$inc": {"n": 10}}
    )
    assert refused.status_code == 400, refused.text
    assert set(reasons(refused)) == {"$inc.n"}
    assert [d["n"] for d in _stored(things)] == [1, 2, BIG - 5, 3]
    floats = things.patch(
        "/things/_byquery", params={"q": json.dumps({"n": {"$lt": 3}})}, json={"$inc": {"f": 1e308}}
    )
    assert floats.json() == {"count": 2}
    again = things.patch(
        "/things/_byquery",
        params={"q": json.dumps({"n": {"$gte": 0}})},
        json={"$inc": {"f": 1e308}},
    )
    assert again.status_code == 400  # two of them would reach infinity
    assert [d.get("f") for d in _stored(things)] == [1e308, 1e308, None, None]


def test_key_value_counters_stay_within_what_a_body_may_hold(things: Keyed) -> None:
    """Counters had the check already (409, the stored value decides): the edges hold too."""
    negated = things.put("/keyv/c/_decr", json={"value": -BIG - 1})  # 0 - (-2**63) = 2**63
    assert negated.status_code == 409
    assert reasons(negated) == {"value": "would make the stored number overflow"}
    assert things.get("/keyv/c").status_code == 404  # nothing written, not even the 0
    assert things.put("/keyv/c/_incr", json={"value": -BIG - 1}).json() == {"value": -BIG - 1}
    assert things.put("/keyv/c/_decr", json={"value": 1}).status_code == 409
    assert things.put("/keyv/c/_incr", json={"value": 0.5}).json() == {"value": -(2.0**63) + 0.5}
    assert things.put("/keyv/f/_incr", json={"value": -1e308}).status_code == 200
    assert things.put("/keyv/f/_decr", json={"value": 1e308}).status_code == 409
    assert things.put("/keyv/f/_incr", json={"value": 0}).json() == {"value": -1e308}


# -- text in paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/things/%FF", "id"),
        ("/things/%C3%28", "id"),  # a lead byte followed by no continuation byte
        ("/things/%ED%A0%80", "id"),  # an encoded surrogate (U+D800) is not UTF-8 either
        ("/things/ok%C0%AF", "id"),  # an overlong "/"
        ("/th%FFngs/t1", "collection"),
        ("/th%FFngs", "collection"),
        ("/keyv/%FF", "key"),
        ("/keyv/%FF/_incr", "key"),
    ],
)
def test_ids_that_are_not_utf8_are_refused(things: Keyed, path: str, name: str) -> None:
    things.post("/things", json={"_id": "\ufffd", "a": 1})  # the id the server's decoding yields
    assert things.put("/keyv/\ufffd", json="one").status_code == 200
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        if path.endswith("_incr") and method != "PUT":
            continue
        response = getattr(things, method.lower())(path, json={"a": 2})
        if response.status_code == 405:
            continue
        assert response.status_code == 400, (method, response.text)
        assert name in reasons(response), response.text
    assert things.get("/things/\ufffd").json()["a"] == 1
    assert things.get("/keyv/\ufffd").json() == "one"
    assert [d["_id"] for d in things.get("/things").json()] == ["\ufffd"]


def test_utf8_ids_still_work(things: Keyed) -> None:
    for doc_id in ("é", "日本", "\U0001f600", "a%b", "\ufffd"):
        assert things.post("/things", json={"_id": doc_id, "a": doc_id}).status_code == 201
        assert things.get(f"/things/{doc_id}").json()["a"] == doc_id


def test_event_ids_that_are_not_utf8_are_refused(database: Database, space: str) -> None:
    """The issue's own example, on a blueprint with literal collections and nested paths."""
    from tests.http.test_documents import EVENT

    with serve(database, space, "events.yaml") as events:
        assert events.put("/events/\ufffd", json=EVENT).status_code == 201
        for path in ("/events/%FF", "/events/%FE", "/events/%FF/comments"):
            response = events.get(path)
            assert response.status_code == 400, response.text
            assert set(reasons(response)) == {"eventid"}, response.text
        assert events.get("/events/%EF%BF%BD").status_code == 200  # U+FFFD itself, encoded


# -- numbers in query text --------------------------------------------------------------------


def test_integers_in_url_parameters_are_exact(things: Keyed) -> None:
    """URL values went through a float: 1234567890123456789 became ...768 (no match), and one
    past 64 bits answered 500 on both backends; 1e400 became infinity, which matched null."""
    things.post("/things", json={"_id": "a", "n": 1234567890123456789})
    things.post("/things", json={"_id": "b", "n": None})
    for value, expected in [
        ("1234567890123456789", ["a"]),
        ("1234567890123456788", []),
        ("100000000000000000000", []),
        ("-100000000000000000000", []),
        ("1e400", []),
    ]:
        response = things.get("/things", params={"n": value})
        assert response.status_code == 200, response.text
        assert [d["_id"] for d in response.json()] == expected, value
    query = things.get("/things", params={"q": json.dumps({"n": 1234567890123456789})})
    assert [d["_id"] for d in query.json()] == ["a"]


def test_integers_in_squiz_filters_are_exact(database: Database, space: str) -> None:
    from tests.http.test_documents import EVENT

    with serve(database, space, "events.yaml") as events:
        assert events.put("/events/e1", json={**EVENT, "cost": 1234567890123456789}).is_success
        for value, expected in [
            ("1234567890123456789", 1),
            ("1234567890123456788", 0),
            ("100000000000000000000", 0),
        ]:
            response = events.get("/events", params={"filters": f"document.cost==={value}"})
            assert response.status_code == 200, response.text
            assert len(response.json()) == expected, value


# -- odd characters in field names ------------------------------------------------------------

ODD_DOCS = [
    {"_id": "t1", "c\\d": 2, "rank": 3},
    {"_id": "t2", "cd": 2, "c": {"d": 2}, "rank": 1},
    {"_id": "t3", 'a"b': 1, "rank": 2},
    {"_id": "t4", "n\nl": [3], "k": {'x"\\': "y"}, "rank": 4},
    {"_id": "t5", "c\\d": 1, 'a"b': 2, "n\nl": "z"},
]


@pytest.fixture
def odd(things: Keyed) -> Keyed:
    for doc in ODD_DOCS:
        assert things.post("/things", json=doc).status_code == 201
    return things


def _ids(response: object) -> list[str]:
    assert getattr(response, "status_code", None) == 200, getattr(response, "text", "")
    body = response.json()  # type: ignore[attr-defined]
    return [d["_id"] for d in (body["data"] if isinstance(body, dict) else body)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"c\\d": 2}, ["t1"]),  # the q={"c\\d":2}: SQLite found nothing
        ({"c\\d": {"$gte": 1}}, ["t1", "t5"]),
        ({"c.d": 2}, ["t2"]),  # a dot is a path, on both
        ({'a"b': 1}, ["t3"]),  # SQLite refused the quote (400)
        ({'a"b': {"$exists": True}}, ["t3", "t5"]),
        ({"n\nl": 3}, ["t4"]),
        ({"n\nl": {"$regex": "^z$"}}, ["t5"]),
        ({'k.x"\\': "y"}, ["t4"]),
        ({"$or": [{"c\\d": 1}, {"n\nl": {"$size": 1}}]}, ["t4", "t5"]),
    ],
)
def test_keys_with_odd_characters_mean_the_same_on_both_backends(
    odd: Keyed, query: dict[str, object], expected: list[str]
) -> None:
    assert _ids(odd.get("/things", params={"q": json.dumps(query), "sort": "_id"})) == expected


def test_squiz_filters_and_sorts_on_odd_keys(odd: Keyed) -> None:
    filtered = odd.get("/things", params={"filters": "document.c\\d===2"})
    assert _ids(filtered) == ["t1"]
    assert _ids(odd.get("/things", params={"filters": 'document.a"b>=1'})) == ["t3", "t5"]
    by_odd = odd.get("/things", params={"sort": "-document.c\\d,+document.rank"})
    assert _ids(by_odd) == ["t1", "t5", "t2", "t3", "t4"]
    hinted = odd.get("/things", params={"h": json.dumps({"sort": {'a"b': -1, "rank": 1}})})
    assert _ids(hinted) == ["t5", "t3", "t2", "t1", "t4"]
    first = odd.get("/things", params={"sort": "+document.n\nl", "page[size]": "2"})
    seen = _ids(first)
    link = first.json()["links"]["next"]
    while link:
        page = odd.get(link)
        seen += _ids(page)
        link = page.json()["links"]["next"]
    assert seen == ["t1", "t2", "t3", "t5", "t4"]  # missing, then the string, then the array


# -- regular expressions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "options", "expected"),
    [
        (r"\bcat\b", "", ["r1", "r2"]),  # PostgreSQL read \b as a backspace
        (r"\x52", "", ["r5"]),  # ... \x52 with every hex digit that followed
        (r"z(?i)AT", "", ["r4"]),  # ... refused (?i) in mid-pattern
        (r"^\pL+$", "", ["r1", "r3", "r4", "r6"]),  # ... did not know \pL
        (r"^ca\w$", "", ["r1"]),  # RE2's \w is ASCII: not the é of "caé"
        ("(?i)^\u212aelvin$", "", ["r3"]),  # RE2 folds the Kelvin sign with k
        (r"^c.t$", "s", ["r1"]),
        (r"^(?:a|c){1,300}t", "", ["r1"]),
    ],
)
def test_regexes_mean_re2_on_both_backends(
    things: Keyed, pattern: str, options: str, expected: list[str]
) -> None:
    for index, name in enumerate(["cat", "a cat.", "kelvin", "zAt", "R2", "caé"], start=1):
        assert things.post("/things", json={"_id": f"r{index}", "name": name}).status_code == 201
    query = {"name": {"$regex": pattern, "$options": options}}
    assert _ids(things.get("/things", params={"q": json.dumps(query), "sort": "_id"})) == expected


@pytest.mark.parametrize("pattern", [r"\C", r"(a)\1", r"(?<=a)b", "(" * 101 + ")" * 101])
def test_patterns_refused_on_one_backend_are_refused_on_both(things: Keyed, pattern: str) -> None:
    query = {"name": {"$regex": pattern}}
    refused = things.get("/things", params={"q": json.dumps(query)})
    assert refused.status_code == 400, refused.text
    assert reasons(refused)["q.name.$regex"].startswith("is not a supported regular expression")


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("q=%7B%22_id%22%3A%22%FF%22%7D", "q"),  # q={"_id":"\xff"} found the document "\ufffd"
        ("_id=%FF", "_id"),
        ("filters=document.a%3D%3D%3D%C3", "filters"),
        ("%FF=1", "\ufffd"),
    ],
)
def test_query_strings_that_are_not_utf8_are_refused(things: Keyed, query: str, name: str) -> None:
    assert things.post("/things", json={"_id": "\ufffd", "a": 1}).is_success
    response = things.get(f"/things?{query}")
    assert response.status_code == 400, response.text
    assert set(reasons(response)) == {name}
    assert _ids(things.get("/things?_id=%EF%BF%BD")) == ["\ufffd"]  # U+FFFD itself, encoded
