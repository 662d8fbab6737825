"""Multi-collection reads, spaces, _byquery rollback, cursors under concurrent inserts,
cross-collection and nested inheritance."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.auth.apikeys import ApiKeyStore
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.http.test_access import SECRET, auth
from tests.http.test_documents import EVENT, reasons
from tests.support.client import BLUEPRINTS, serve

pytestmark = pytest.mark.citus_audit


def test_multi_collection_read(database: Database, space: str) -> None:
    with serve(database, space, "events.yaml") as events:
        events.put("/events/e1", json=EVENT)
        events.put("/events/e2", json={**EVENT, "name": "Other"})
        events.put("/events/e1/comments/c1", json={"author": "a", "text": "t"})
        read = events.post("/__resources/collections", json={"collections": ["/events"]})
        assert read.status_code == 200
        assert [d["$collection"] for d in read.json()["data"]] == ["/events", "/events"]
        filtered = events.post(
            "/__resources/collections",
            json={"collections": ["/events"], "filters": "document.name===Other"},
        )
        assert [d["id"] for d in filtered.json()["data"]] == ["e2"]
        both = events.post(
            "/__resources/collections", json={"collections": ["/events", "/events/e1/comments"]}
        ).json()["data"]
        assert [d["$collection"] for d in both] == ["/events", "/events", "/events/e1/comments"]
        assert (
            events.post("/__resources/collections", json={"collections": ["/nope"]}).status_code
            == 404
        )
        assert events.post("/__resources/collections", json={"collections": "x"}).status_code == 400


def test_multi_collection_read_refuses_parent_rules(database: Database, space: str) -> None:
    with serve(database, space, "multi-user.yaml", jwt_secret=SECRET) as app:
        refused = app.post(
            "/__resources/collections",
            json={"collections": ["/users/u1/notes"]},
            headers=auth("u1"),
        )
        assert refused.status_code == 400
        assert (
            app.post(
                "/__resources/collections", json={"collections": ["/users"]}, headers=auth("u1")
            ).status_code
            == 403
        )
        ok = app.post("/__resources/collections", json={"collections": ["/posts"]})
        assert ok.status_code == 200


def test_spaces_are_isolated(database: Database, space: str) -> None:
    dev, prod = space + "dev", space + "prod"
    _, dev_key = ApiKeyStore(database).add(dev, readonly=False)
    blueprints = [
        serve_blueprint_file(BLUEPRINTS / "codehooks.yaml", dev),
        serve_blueprint_file(BLUEPRINTS / "codehooks.yaml", prod),
    ]
    app = create_app(Settings(migrate=False), blueprints, database=database)
    with TestClient(app) as client:
        key = {"x-apikey": dev_key}
        assert client.post(f"/{dev}/pets", json={"n": 1}, headers=key).status_code == 201
        assert client.put(f"/{dev}/keyv/k", json="v", headers=key).status_code == 200
        assert len(client.get(f"/{dev}/pets", headers=key).json()) == 1
        # The dev key is not a key of prod; prod's data is separate.
        assert client.get(f"/{prod}/pets", headers=key).status_code == 401
        _, prod_key = ApiKeyStore(database).add(prod, readonly=False)
        other = {"x-apikey": prod_key}
        assert client.get(f"/{prod}/pets", headers=other).status_code == 404  # none in prod
        assert client.get(f"/{prod}/keyv/k", headers=other).status_code == 404
        assert client.get("/pets", headers=key).status_code == 404
        assert client.get("/__health").status_code == 200


BYQUERY: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "components": {
        "schemas": {
            "Item": {
                "type": "object",
                "properties": {"n": {"type": "integer", "maximum": 5}},
                "required": ["n"],
            }
        }
    },
    "paths": {
        "/items": {
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}}
        },
        "/items/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
            "put": {
                "x-datastore-acl": "public",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}
                    }
                },
                "responses": {"200": {"description": "ok"}},
            },
            # By-query writes select with the document PATCH's rule: one must be declared.
            "patch": {
                "x-datastore-acl": "public",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {"description": "ok"}},
            },
        },
        "/items/_byquery": {
            "patch": {
                "x-datastore-acl": "public",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {"description": "ok"}},
            }
        },
    },
}


def test_byquery_rolls_back_the_whole_batch(database: Database, space: str) -> None:
    with serve(database, space, copy.deepcopy(BYQUERY)) as client:
        for n in (1, 3, 5):
            client.put(f"/items/i{n}", json={"n": n})
        refused = client.patch("/items/_byquery", params={"q": "{}"}, json={"$inc": {"n": 1}})
        assert refused.status_code == 400
        assert "n" in reasons(refused)
        assert [d["n"] for d in client.get("/items").json()] == [1, 3, 5]
        done = client.patch(
            "/items/_byquery", params={"q": '{"n": {"$lt": 5}}'}, json={"$inc": {"n": 1}}
        )
        assert done.json() == {"count": 2}


def test_cursor_paging_under_concurrent_inserts(database: Database, space: str) -> None:
    with serve(database, space, "events.yaml") as events:
        for n in range(30):
            events.put(f"/events/a{n:02}", json={**EVENT, "name": f"a{n:02}"})
        seen: list[str] = []
        url: str | None = "/events?page[size]=7"
        inserted = 0
        while url:
            page = events.get(url).json()
            seen.extend(d["name"] for d in page["data"])
            url = page["links"]["next"]
            events.put(f"/events/z{inserted:02}", json={**EVENT, "name": f"z{inserted:02}"})
            inserted += 1
        originals = [name for name in seen if name.startswith("a")]
        assert originals == [f"a{n:02}" for n in range(30)]
        assert len(seen) == len(set(seen))


INHERIT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "components": {
        "schemas": {
            "Doc": {
                "type": "object",
                "properties": {
                    "parent": {
                        "type": ["string", "null"],
                        "x-datastore-source": "document.$extends",
                    },
                    "color": {"type": "string"},
                    "size": {"type": "integer"},
                },
            }
        }
    },
    "paths": {},
}
for path in ("/themes/{id}", "/pages/{id}", "/sites/{site}", "/sites/{site}/pages/{id}"):
    params = [
        {"name": p.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
        for p in path.split("/")
        if p.startswith("{")
    ]
    INHERIT["paths"][path] = {
        "parameters": params,
        "get": {
            "x-datastore-acl": "public",
            "responses": {
                "200": {
                    "description": "ok",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Doc"}}
                    },
                }
            },
        },
        "put": {
            "x-datastore-acl": "public",
            "requestBody": {
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Doc"}}}
            },
            "responses": {"200": {"description": "ok"}, "201": {"description": "ok"}},
        },
    }


def test_extends_across_and_inside_nested_collections(database: Database, space: str) -> None:
    with serve(database, space, copy.deepcopy(INHERIT)) as client:
        client.put("/themes/dark", json={"color": "black", "size": 2})
        client.put("/pages/p1", json={"parent": "/themes/dark", "size": 3})
        assert client.get("/pages/p1").json() == {
            "parent": "/themes/dark",
            "color": "black",
            "size": 3,
        }
        client.put("/sites/s1", json={"color": "blue"})
        client.put("/sites/s1/pages/home", json={"parent": "/pages/p1"})
        nested = client.get("/sites/s1/pages/home").json()
        assert (nested["color"], nested["size"]) == ("black", 3)
        client.put("/themes/dark", json={"color": "grey", "size": 2})
        assert client.get("/sites/s1/pages/home").json()["color"] == "grey"


@pytest.mark.parametrize("rule", ["parent.$id === jwt.sub", "jwt.a === 1 || parent.x === 2"])
def test_lint_refuses_parent_on_root_collections(rule: str) -> None:
    from datastore.blueprint.lint import lint_blueprint
    from datastore.blueprint.loader import LoadedBlueprint

    document = copy.deepcopy(BYQUERY)
    document["paths"]["/items"]["get"]["x-datastore-acl"] = rule
    from pathlib import Path

    found = lint_blueprint(LoadedBlueprint(Path("x.yaml"), document))
    assert [d.rule for d in found if d.severity == "error"] == ["acl-parent"]
