"""Key-value and queue operations obey their ``x-datastore-acl`` rule, evaluated on the caller
(they have no document). Before, only the presence of a valid credential was checked: any
token passed ``jwt.isAdmin === true``."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from datastore.app import ServedBlueprint, create_app
from datastore.auth.credentials import mint_token
from datastore.config import Settings
from datastore.storage.engine import Database

SECRET = "r" * 32
RULE = "jwt.isAdmin === true"
TOPIC = [{"name": "topic", "in": "path", "required": True, "schema": {"type": "string"}}]
KEY = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}]
JSON = {"application/json": {"schema": {}}}
OK = {"200": {"description": "ok", "content": JSON}, "201": {"description": "ok", "content": JSON}}
BODY = {"required": True, "content": {"application/json": {"schema": {}}}}
BLUEPRINT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "rules", "version": "1"},
    "paths": {
        "/queue/{topic}": {
            "post": {
                "x-datastore-acl": RULE,
                "parameters": TOPIC,
                "requestBody": BODY,
                "responses": OK,
            }
        },
        "/keyv/{key}": {
            "get": {"x-datastore-acl": RULE, "parameters": KEY, "responses": OK},
            "put": {
                "x-datastore-acl": RULE,
                "parameters": KEY,
                "requestBody": BODY,
                "responses": OK,
            },
            "delete": {"x-datastore-acl": RULE, "parameters": KEY, "responses": OK},
        },
    },
}


def _as(claims: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(claims, secret=SECRET)}"}


def test_key_value_and_queue_rules_are_evaluated(database: Database, space: str) -> None:
    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET),
        [ServedBlueprint(space, BLUEPRINT)],
        database=database,
    )
    admin, user = _as({"sub": "a", "isAdmin": True}), _as({"sub": "b"})
    with TestClient(app) as client:
        assert client.put("/keyv/k", json=1, headers=admin).status_code == 200
        job = client.post("/queue/t", json={"n": 1}, headers=admin)
        assert job.status_code == 201
        job_id = job.json()["_id"]
        refused = [
            client.put("/keyv/k", json=2, headers=user),
            client.get("/keyv/k", headers=user),
            client.get("/keyv", headers=user),
            client.delete("/keyv/k", headers=user),
            client.post("/queue/t", json={"n": 2}, headers=user),
            client.get(f"/queue/t/{job_id}", headers=user),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        assert all("1" not in r.text.replace("403", "") for r in refused)  # no value leaks
        assert client.get("/keyv/k", headers=admin).json() == 1
        assert client.get("/keyv/k").status_code == 401
