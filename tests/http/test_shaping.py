"""Source properties, read-time defaults, projection, ETags and preconditions."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from datastore.storage.engine import Database
from datastore.storage.tables import documents
from tests.http.test_documents import EVENT, problem
from tests.support.client import BLUEPRINTS, CheckedClient, serve

pytestmark = pytest.mark.citus_audit

NOTES: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "notes", "version": "1"},
    "components": {
        "schemas": {
            "Note": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "x-datastore-source": "document.$id"},
                    "text": {"type": "string"},
                    "color": {"type": "string", "default": "yellow"},
                    "pinned": {"type": "boolean", "default": False},
                },
                "required": ["text"],
            },
            "NoteSummary": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "x-datastore-source": "document.$id"},
                    "text": {"type": "string"},
                },
            },
        }
    },
    "paths": {
        "/notes": {
            "get": {
                "x-datastore-acl": "public",
                "responses": {
                    "200": {
                        "description": "summaries",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/NoteSummary"},
                                }
                            }
                        },
                    }
                },
            }
        },
        "/notes/{key}": {
            "parameters": [
                {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {
                "x-datastore-acl": "public",
                "responses": {
                    "200": {
                        "description": "a note",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Note"}}
                        },
                    }
                },
            },
            "put": {
                "x-datastore-acl": "public",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Note"}}
                    }
                },
                "responses": {
                    "201": {
                        "description": "created",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Note"}}
                        },
                    },
                    "204": {"description": "replaced"},
                },
            },
            "patch": {
                "x-datastore-acl": "public",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Note"}}
                    }
                },
                "responses": {"204": {"description": "updated"}},
            },
            "delete": {
                "x-datastore-acl": "public",
                "responses": {"204": {"description": "deleted"}},
            },
        },
    },
}


def test_source_properties_are_filled(events: CheckedClient) -> None:
    body = events.put("/events/e1", json=EVENT).json()
    assert body["id"] == "e1"
    created = datetime.fromisoformat(body["created"])
    assert created.tzinfo is not None
    assert body["updated"] == body["created"]


def test_source_properties_are_not_stored(database: Database, space: str) -> None:
    with serve(database, space, NOTES) as notes:
        notes.put("/notes/n1", json={"text": "hi"})
    query = sa.select(documents.c.body).where(
        documents.c.space == space, documents.c.doc_id == "n1"
    )
    with database.read() as conn:
        assert conn.execute(query).scalar_one() == {"text": "hi"}


def test_defaults_apply_at_read_time(database: Database, space: str) -> None:
    with serve(database, space, NOTES) as notes:
        notes.put("/notes/n1", json={"text": "hi"})
        notes.put("/notes/n2", json={"text": "hi", "color": "blue"})
        assert notes.get("/notes/n1").json()["color"] == "yellow"
    changed = copy.deepcopy(NOTES)
    changed["components"]["schemas"]["Note"]["properties"]["color"]["default"] = "green"
    with serve(database, space, changed) as notes:
        assert notes.get("/notes/n1").json()["color"] == "green"
        assert notes.get("/notes/n2").json()["color"] == "blue"


def test_projection_through_the_response_schema(database: Database, space: str) -> None:
    with serve(database, space, NOTES) as notes:
        notes.put("/notes/n1", json={"text": "hi", "extra": "kept"})
        assert notes.get("/notes").json() == [{"key": "n1", "text": "hi"}]
        full = notes.get("/notes/n1").json()
        assert full == {"key": "n1", "text": "hi", "color": "yellow", "pinned": False}


def test_no_response_body_declared_means_204(database: Database, space: str) -> None:
    with serve(database, space, NOTES) as notes:
        assert notes.put("/notes/n1", json={"text": "a"}).status_code == 201
        replaced = notes.put("/notes/n1", json={"text": "b"})
        assert (replaced.status_code, replaced.content) == (204, b"")
        patched = notes.patch("/notes/n1", json={"color": "red"})
        assert (patched.status_code, patched.content) == (204, b"")
        assert patched.headers["etag"] == '"3"'
        assert notes.get("/notes/n1").json()["color"] == "red"


def test_etag_and_if_match(events: CheckedClient) -> None:
    etag = events.put("/events/e1", json=EVENT).headers["etag"]
    assert events.get("/events/e1").headers["etag"] == etag
    stale = events.patch("/events/e1", json={"cost": 1}, headers={"If-Match": '"99"'})
    assert stale.status_code == 412
    assert problem(stale)["title"] == "Precondition Failed"
    fresh = events.patch("/events/e1", json={"cost": 1}, headers={"If-Match": etag})
    assert fresh.status_code == 200
    assert events.put("/events/e1", json=EVENT, headers={"If-Match": etag}).status_code == 412
    new_etag = fresh.headers["etag"]
    assert events.delete("/events/e1", headers={"If-Match": etag}).status_code == 412
    assert events.delete("/events/e1", headers={"If-Match": new_etag}).status_code == 204
    assert events.put("/events/e2", json=EVENT, headers={"If-Match": "*"}).status_code == 412


def test_if_none_match_star_creates_only(events: CheckedClient) -> None:
    first = events.put("/events/e1", json=EVENT, headers={"If-None-Match": "*"})
    assert first.status_code == 201
    second = events.put("/events/e1", json=EVENT, headers={"If-None-Match": "*"})
    assert second.status_code == 412
    assert events.get("/events/e1").headers["etag"] == '"1"'


def test_conditional_get_is_304(events: CheckedClient) -> None:
    etag = events.put("/events/e1", json=EVENT).headers["etag"]
    response = events.get("/events/e1", headers={"If-None-Match": etag})
    assert (response.status_code, response.content) == (304, b"")
    assert events.get("/events/e1", headers={"If-None-Match": '"0"'}).status_code == 200


def test_nested_collections(events: CheckedClient) -> None:
    missing = events.post("/events/nope/comments", json={"author": "a", "text": "t"})
    assert missing.status_code == 404
    assert events.get("/events/nope/comments").status_code == 404
    events.put("/events/e1", json=EVENT)
    events.put("/events/e2", json=EVENT)
    comment = events.post("/events/e1/comments", json={"author": "a", "text": "t"})
    assert comment.status_code == 201
    assert comment.headers["location"].startswith("/events/e1/comments/")
    events.put("/events/e2/comments/c1", json={"author": "b", "text": "u"})
    assert len(events.get("/events/e1/comments").json()) == 1
    assert events.delete("/events/e1").status_code == 204
    assert events.get(comment.headers["location"]).status_code == 404
    events.put("/events/e1", json=EVENT)
    assert events.get("/events/e1/comments").json() == []
    assert events.get("/events/e2/comments/c1").status_code == 200


def test_example_blueprint_is_the_one_served() -> None:
    document = yaml.safe_load((BLUEPRINTS / "events.yaml").read_text())
    assert "/events/{eventid}/comments/{commentid}" in document["paths"]
