"""Bad input over HTTP: every failure is a problem+json with the field and the reason, never a
500, and nothing is written."""

from __future__ import annotations

import pytest

from datastore.storage.engine import Database
from tests.http.test_documents import EVENT, problem, reasons
from tests.support.client import CheckedClient, serve

pytestmark = pytest.mark.citus_audit


def count(events: CheckedClient) -> int:
    return len(events.get("/events").json())


def test_every_schema_error_at_once(events: CheckedClient) -> None:
    response = events.post(
        "/events",
        json={"name": "", "eventDate": "not a date", "cost": "free", "capacity": 1.5, "x": 1},
    )
    assert response.status_code == 400
    assert problem(response)["title"] == "JSON does not validate."
    found = reasons(response)
    assert {"name", "eventDate", "cost", "capacity", "x"} <= set(found)
    assert all(reason and "'" not in reason[:1] for reason in found.values())
    assert count(events) == 0


def test_missing_required_properties_are_named(events: CheckedClient) -> None:
    response = events.post("/events", json={})
    assert set(reasons(response)) == {"name", "eventDate"}


@pytest.mark.parametrize(
    ("content", "name"),
    [(b"{bad json", "body"), (b"[1, 2]", "body"), (b'"text"', "body"), (b"", "body")],
)
def test_malformed_or_non_object_bodies(events: CheckedClient, content: bytes, name: str) -> None:
    response = events.post("/events", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert name in reasons(response)
    assert count(events) == 0


def test_invalid_utf8_body(events: CheckedClient) -> None:
    response = events.post(
        "/events", content=b'{"name": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert count(events) == 0


def test_wrong_content_type_is_415(events: CheckedClient) -> None:
    response = events.post("/events", content=b"name=x", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert problem(response)["title"] == "Unsupported Media Type"


def test_body_over_the_limit_is_413(database: Database, space: str) -> None:
    with serve(database, space, "events.yaml", max_body_bytes=1000) as events:
        big = {**EVENT, "description": "x" * 2000}
        response = events.post("/events", json=big)
        assert response.status_code == 413
        assert problem(response)["title"] == "Payload Too Large"
        assert count(events) == 0


def test_too_deep_json_is_refused(database: Database, space: str) -> None:
    with serve(database, space, "events.yaml", max_json_depth=10) as events:
        deep: object = "x"
        for _ in range(20):
            deep = [deep]
        response = events.post("/events", json={**EVENT, "tags": deep})
        assert response.status_code == 400
        assert "body" in reasons(response)
        very_deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
        response = events.post(
            "/events", content=very_deep, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400


def test_read_only_source_properties_are_refused(events: CheckedClient) -> None:
    response = events.post(
        "/events", json={**EVENT, "created": "2020-01-01T00:00:00Z", "updated": "x"}
    )
    assert response.status_code == 400
    assert set(reasons(response)) == {"created", "updated"}
    assert count(events) == 0


def test_id_property_must_match_the_url(events: CheckedClient) -> None:
    response = events.put("/events/e1", json={**EVENT, "id": "other"})
    assert response.status_code == 400
    assert reasons(response) == {"id": "must match the id in the URL"}
    same = events.put("/events/e1", json={**EVENT, "id": "e1"})
    assert same.status_code == 201


def test_post_honours_an_id_in_the_body_once(events: CheckedClient) -> None:
    first = events.post("/events", json={**EVENT, "id": "chosen"})
    assert first.status_code == 201
    assert first.headers["location"] == "/events/chosen"
    second = events.post("/events", json={**EVENT, "id": "chosen"})
    assert second.status_code == 409
    assert problem(second)["title"] == "Conflict"
    bad = events.post("/events", json={**EVENT, "id": "a/b"})
    assert bad.status_code == 400
    assert "id" in reasons(bad)


@pytest.mark.parametrize("doc_id", ["..", "x" * 300, "tab%09here", "nul%00x"])
def test_bad_ids_in_the_url(events: CheckedClient, doc_id: str) -> None:
    response = events.put(f"/events/{doc_id}", json=EVENT)
    assert response.status_code in (400, 404)
    assert count(events) == 0


def test_failed_write_changes_nothing(events: CheckedClient) -> None:
    events.put("/events/e1", json=EVENT)
    before = events.get("/events/e1").json()
    assert events.put("/events/e1", json={"name": 5}).status_code == 400
    assert events.patch("/events/e1", json={"capacity": 0}).status_code == 400
    assert events.get("/events/e1").json() == before


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/events", b'{"name": "a\\u0000b", "eventDate": "2026-01-01T00:00:00Z"}'),
        ("POST", "/events", b'{"name": "x", "eventDate": "2026-01-01T00:00:00Z", "\\u0000": 1}'),
        ("PUT", "/events/a%00b", b'{"name": "x", "eventDate": "2026-01-01T00:00:00Z"}'),
        ("POST", "/events", b'{"name": "x", "cost": 1e400, "eventDate": "2026-01-01T00:00:00Z"}'),
        ("GET", '/events?q={"name": "a\\u0000"}', b""),
        ("GET", "/events?filters=document.name===%00", b""),
        ("GET", "/events?page[after]=%00%00", b""),
    ],
)
def test_hostile_values_are_400_and_write_nothing(
    events: CheckedClient, method: str, path: str, content: bytes
) -> None:
    response = events.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert count(events) == 0


def test_ids_with_slashes_never_reach_a_document(events: CheckedClient) -> None:
    assert events.put("/events/a%2Fb", json=EVENT).status_code == 404
    assert count(events) == 0


def test_large_in_lists_work(events: CheckedClient) -> None:
    events.put("/events/e1", json=EVENT)
    values = ",".join(f'"v{n}"' for n in range(998)) + ',"Gig"'
    response = events.get("/events", params={"q": '{"name": {"$in": [' + values + "]}}"})
    assert response.status_code == 200
    assert [d["id"] for d in response.json()] == ["e1"]
    too_many = ",".join(f'"v{n}"' for n in range(1001))
    assert (
        events.get("/events", params={"q": '{"name": {"$in": [' + too_many + "]}}"}).status_code
        == 400
    )


def test_location_header_of_a_unicode_collection_path(events: CheckedClient) -> None:
    events.put("/events/%C3%A9v%F0%9F%8E%B8", json=EVENT)
    created = events.post("/events/%C3%A9v%F0%9F%8E%B8/comments", json={"author": "a", "text": "t"})
    assert created.status_code == 201
    assert created.headers["location"].startswith("/events/%C3%A9v%F0%9F%8E%B8/comments/")
    assert events.get(created.headers["location"]).status_code == 200


def test_long_query_strings_and_duplicate_keys(events: CheckedClient) -> None:
    assert events.get("/events", params={"q": "x" * 60_000}).status_code == 400
    assert events.get("/events", params={"filters": "document.a===1;" * 2000}).status_code == 400
    body = b'{"name": "first", "name": "last", "eventDate": "2026-01-01T00:00:00Z"}'
    created = events.post("/events", content=body, headers={"content-type": "application/json"})
    assert created.status_code == 201
    assert created.json()["name"] == "last"  # the last duplicate wins, as in JSON.parse
