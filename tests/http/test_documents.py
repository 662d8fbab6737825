"""Document operations over HTTP on the Squiz-style example: every row of the SPEC §3 table."""

from __future__ import annotations

from typing import Any

import pytest

from datastore.storage.engine import Database
from tests.support.client import CheckedClient, serve

pytestmark = [pytest.mark.pgbouncer, pytest.mark.citus_audit]

EVENT = {"name": "Gig", "eventDate": "2026-12-01T20:00:00Z"}


def problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == str(response.status_code)
    return body


def reasons(response: Any) -> dict[str, str]:
    return {p["name"]: p["reason"] for p in problem(response)["invalid-params"]}


def test_post_creates_with_generated_id_and_location(events: CheckedClient) -> None:
    response = events.post("/events", json=EVENT)
    assert response.status_code == 201
    doc = response.json()
    assert response.headers["location"] == f"/events/{doc['id']}"
    assert response.headers["etag"] == '"1"'
    assert doc["name"] == "Gig"
    fetched = events.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == doc


def test_generated_ids_are_unique_and_sortable(events: CheckedClient) -> None:
    ids = [events.post("/events", json=EVENT).json()["id"] for _ in range(5)]
    assert len(set(ids)) == 5
    assert ids == sorted(ids)


def test_put_new_id_creates_201_then_replaces_200(events: CheckedClient) -> None:
    created = events.put("/events/e1", json={**EVENT, "cost": 5})
    assert created.status_code == 201
    assert created.json()["id"] == "e1"
    replaced = events.put("/events/e1", json={"name": "Other", "eventDate": EVENT["eventDate"]})
    assert replaced.status_code == 200
    body = replaced.json()
    assert body["name"] == "Other"
    assert body["cost"] == 0  # replaced whole: the old cost is gone, the default shows
    assert replaced.headers["etag"] == '"2"'
    assert body["created"] == created.json()["created"]
    assert body["updated"] > created.json()["updated"]


def test_put_with_single_declared_2xx_and_no_body(events: CheckedClient) -> None:
    events.put("/events/e1", json=EVENT)
    first = events.put("/events/e1/comments/c1", json={"author": "a", "text": "t"})
    again = events.put("/events/e1/comments/c1", json={"author": "a", "text": "u"})
    # The operation declares only 201 without content: that code, no body, both times.
    assert (first.status_code, first.content) == (201, b"")
    assert (again.status_code, again.content) == (201, b"")
    assert events.get("/events/e1/comments/c1").json()["text"] == "u"


def test_patch_updates_given_fields(events: CheckedClient) -> None:
    events.put("/events/e1", json={**EVENT, "tags": ["a"]})
    response = events.patch("/events/e1", json={"cost": 12.5, "tags": ["b", "c"]})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["cost"], body["tags"]) == ("Gig", 12.5, ["b", "c"])
    assert response.headers["etag"] == '"2"'


def test_patch_missing_document_is_404(events: CheckedClient) -> None:
    response = events.patch("/events/nope", json={"cost": 1})
    assert response.status_code == 404
    assert problem(response)["title"] == "Document not found"


def test_patch_ignores_required_but_validates_the_result(events: CheckedClient) -> None:
    events.put("/events/e1", json=EVENT)
    assert events.patch("/events/e1", json={"cost": 3}).status_code == 200
    bad = events.patch("/events/e1", json={"cost": -1, "category": "nope"})
    assert bad.status_code == 400
    assert set(reasons(bad)) == {"cost", "category"}
    assert events.get("/events/e1").json()["cost"] == 3


def test_delete_is_204_then_404(events: CheckedClient) -> None:
    events.put("/events/e1", json=EVENT)
    response = events.delete("/events/e1")
    assert (response.status_code, response.content) == (204, b"")
    assert events.get("/events/e1").status_code == 404
    assert events.delete("/events/e1").status_code == 404


def test_get_missing_document(events: CheckedClient) -> None:
    response = events.get("/events/missing")
    assert response.status_code == 404
    assert problem(response) == {"title": "Document not found", "status": "404"}


def test_list_in_creation_order_with_limit_offset(events: CheckedClient) -> None:
    for n in range(5):
        events.put(f"/events/e{4 - n}", json={**EVENT, "name": f"n{n}"})
    names = [d["name"] for d in events.get("/events").json()]
    assert names == ["n0", "n1", "n2", "n3", "n4"]
    window = events.get("/events", params={"limit": 2, "offset": 1}).json()
    assert [d["name"] for d in window] == ["n1", "n2"]
    assert events.get("/events", params={"limit": 0}).json() == []


def test_list_bad_window_parameters(events: CheckedClient) -> None:
    for params in ({"limit": "x"}, {"offset": "-1"}, {"limit": "100000"}):
        response = events.get("/events", params=params)
        assert response.status_code == 400, params
        assert set(reasons(response)) <= {"limit", "offset"}


def test_empty_collection_lists_empty(events: CheckedClient) -> None:
    response = events.get("/events")
    assert (response.status_code, response.json()) == (200, [])


def test_undeclared_method_is_405(events: CheckedClient) -> None:
    response = events.post("/events/e1", json=EVENT)
    assert response.status_code == 405
    assert problem(response)["title"] == "Method Not Allowed"
    assert events.put("/events", json=EVENT).status_code == 405
    assert events.patch("/events/e1/comments/c1", json={}).status_code == 405


def test_unknown_path_is_404(events: CheckedClient) -> None:
    assert problem(events.get("/nothing"))["title"] == "Collection not found"
    assert problem(events.get("/nothing/here"))["title"] == "Document not found"


def test_405_lists_the_declared_methods(events: CheckedClient) -> None:
    response = events.request("OPTIONS", "/events/e1")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH, PUT"
    assert events.request("TRACE", "/events").headers["allow"] == "GET, POST"


def test_a_missing_parent_is_named(events: CheckedClient) -> None:
    for response in (
        events.post("/events/nope/comments", json={"author": "a", "text": "t"}),
        events.get("/events/nope/comments"),
    ):
        assert response.status_code == 404
        assert problem(response) == {
            "title": "Collection not found",
            "status": "404",
            "detail": "The parent document /events/nope does not exist.",
        }


def test_an_explicit_null_is_a_value_not_the_default(database: Database, space: str) -> None:
    """A default applies to a missing property; a null the schema allows reads back as null,
    in the document, in listings and in filters (issue 23)."""
    schema = {
        "type": "object",
        "properties": {"note": {"type": ["null", "string"], "default": "my default"}},
    }
    content = {"application/json": {"schema": schema}}
    blueprint = {
        "openapi": "3.1.0",
        "info": {"title": "nulls", "version": "1"},
        "paths": {
            "/n": {
                "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}}
            },
            "/n/{id}": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "get": {
                    "x-datastore-acl": "public",
                    "responses": {"200": {"description": "ok", "content": content}},
                },
                "put": {
                    "x-datastore-acl": "public",
                    "requestBody": {"content": content},
                    "responses": {"200": {"description": "ok", "content": content}},
                },
            },
        },
    }
    with serve(database, space, blueprint) as client:
        assert client.put("/n/null", json={"note": None}).json() == {"note": None}
        assert client.put("/n/absent", json={}).json() == {"note": "my default"}
        assert client.get("/n/null").json() == {"note": None}
        assert client.get("/n", params={"note": "my default"}).json() == [{"note": "my default"}]


def test_a_codehooks_space_before_a_declared_collection_gets_a_hint(events: CheckedClient) -> None:
    # (Outside the served document's server URL: sent past the conformance check.)
    wrong = events.client.get("/dev/events")
    assert wrong.status_code == 404
    assert "request /events" in problem(wrong)["detail"]
    assert "detail" not in problem(events.client.get("/nothing/here/at/all"))
