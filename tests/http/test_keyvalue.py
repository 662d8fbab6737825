"""The key-value store over HTTP: values, TTL, keyspaces, counters, prefix listing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from datastore.app import ServedBlueprint, create_app
from datastore.config import Settings
from datastore.keyvalue.service import purge_expired
from datastore.storage.engine import Database
from tests.http.test_documents import problem, reasons
from tests.support.client import CheckedClient, serve
from tests.support.live import live_server

pytestmark = [pytest.mark.pgbouncer, pytest.mark.citus_audit]


def _op(method_body: dict[str, Any]) -> dict[str, Any]:
    return {"x-datastore-acl": "public", **method_body}


KEY = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}]
KV: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "kv", "version": "1"},
    "paths": {
        "/keyv/{key}": {
            "parameters": KEY,
            "get": _op(
                {"responses": {"200": {"description": "value"}, "404": {"description": "no"}}}
            ),
            "put": _op(
                {
                    "parameters": [{"name": "ttl", "in": "query", "schema": {"type": "integer"}}],
                    "requestBody": {"content": {"application/json": {"schema": {}}}},
                    "responses": {"200": {"description": "stored"}},
                }
            ),
            "delete": _op({"responses": {"200": {"description": "deleted"}}}),
        },
        "/keyv/{key}/_incr": {
            "parameters": KEY,
            "put": _op(
                {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"value": {"type": "number"}},
                                }
                            }
                        }
                    },
                    "responses": {"200": {"description": "new value"}},
                }
            ),
        },
        "/keyv/{key}/_decr": {
            "parameters": KEY,
            "put": _op(
                {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"type": "object"}}}
                    },
                    "responses": {"200": {"description": "new value"}},
                }
            ),
        },
    },
}


@pytest.fixture
def kv(database: Database, space: str) -> Iterator[CheckedClient]:
    with serve(database, space, KV) as client:
        yield client


@pytest.mark.parametrize(
    "value", ["text", {"a": [1, {"b": None}]}, 42, 1.5, True, None, [1, "two"], ""]
)
def test_values_of_every_json_type_round_trip(kv: CheckedClient, value: Any) -> None:
    body = json.dumps(value).encode()
    headers = {"content-type": "application/json"}
    assert kv.put("/keyv/k", content=body, headers=headers).status_code == 200
    got = kv.get("/keyv/k")
    assert (got.status_code, got.json()) == (200, value)


def test_missing_key_and_delete(kv: CheckedClient) -> None:
    assert problem(kv.get("/keyv/nope"))["status"] == "404"
    assert kv.delete("/keyv/nope").status_code == 404
    kv.put("/keyv/k", json="v")
    assert kv.delete("/keyv/k").status_code == 200
    assert kv.get("/keyv/k").status_code == 404


def test_ttl_expires_at_read_time(kv: CheckedClient, database: Database) -> None:
    assert kv.put("/keyv/short", params={"ttl": 150}, json="soon gone").status_code == 200
    kv.put("/keyv/long", params={"ttl": 600000}, json="stays")
    assert kv.get("/keyv/short").json() == "soon gone"
    time.sleep(0.3)
    assert kv.get("/keyv/short").status_code == 404
    assert kv.get("/keyv/long").json() == "stays"
    assert kv.delete("/keyv/short").status_code == 404
    kv.put("/keyv/again", params={"ttl": 1}, json=1)
    time.sleep(0.05)
    assert purge_expired(database) >= 1
    assert kv.get("/keyv/long").status_code == 200


@pytest.mark.parametrize("ttl", ["0", "-5", "1.5", "abc", "99999999999999999999"])
def test_bad_ttl_is_400(kv: CheckedClient, ttl: str) -> None:
    response = kv.put("/keyv/k", params={"ttl": ttl}, json="v")
    assert response.status_code == 400
    assert "ttl" in reasons(response)
    assert kv.get("/keyv/k").status_code == 404


def test_keyspaces_are_isolated(kv: CheckedClient) -> None:
    kv.put("/keyv/k", json="default")
    kv.put("/keyv/k", params={"keyspace": "other"}, json="other")
    assert kv.get("/keyv/k").json() == "default"
    assert kv.get("/keyv/k", params={"keyspace": "other"}).json() == "other"
    assert kv.get("/keyv/k", params={"keyspace": "third"}).status_code == 404
    assert kv.get("/keyv/k", params={"keyspace": "bad space!"}).status_code == 400


def test_increment_and_decrement(kv: CheckedClient) -> None:
    assert kv.put("/keyv/hits/_incr", json={"value": 5}).json() == {"value": 5}
    assert kv.put("/keyv/hits/_incr", json={"value": 2.5}).json() == {"value": 7.5}
    assert kv.put("/keyv/hits/_decr", json={"value": 10}).json() == {"value": -2.5}
    assert kv.get("/keyv/hits").json() == -2.5
    kv.put("/keyv/name", json="text")
    conflict = kv.put("/keyv/name/_incr", json={"value": 1})
    assert conflict.status_code == 409
    assert kv.put("/keyv/hits/_incr", json={"value": "1"}).status_code == 400
    assert kv.put("/keyv/hits/_incr", json={"value": True}).status_code == 400


def test_prefix_listing(kv: CheckedClient) -> None:
    for key in ("user:2", "user:1", "usex", "other", "user%"):
        kv.put(f"/keyv/{key}", json=key)
    listed = kv.get("/keyv", params={"prefix": "user"}).json()
    assert [e["key"] for e in listed] == ["user%", "user:1", "user:2"]
    assert [e["key"] for e in kv.get("/keyv", params={"prefix": "user%"}).json()] == ["user%"]
    assert len(kv.get("/keyv", params={"limit": 2}).json()) == 2
    assert {e["expiresAt"] for e in listed} == {None}
    kv.put("/keyv/user:ttl", json=1, params={"ttl": 60_000})
    (expiring,) = kv.get("/keyv", params={"prefix": "user:ttl"}).json()
    assert expiring["expiresAt"].endswith("Z")  # when the data browser shows its TTL


def test_concurrent_increments_are_atomic(database: Database, space: str) -> None:
    app = create_app(Settings(migrate=False), [ServedBlueprint(space, KV)], database=database)
    with live_server(app) as url:

        def client_run(_: int) -> list[int]:
            with httpx.Client(base_url=url, timeout=30) as client:
                return [
                    client.put("/keyv/n/_incr", json={"value": 1}).status_code for _ in range(25)
                ]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = [s for batch in pool.map(client_run, range(8)) for s in batch]
        assert statuses == [200] * 200
        with httpx.Client(base_url=url) as client:
            assert client.get("/keyv/n").json() == 200


def test_increments_that_overflow_are_refused(kv: CheckedClient) -> None:
    # Found by schemathesis: 1e308 + 1e308 was stored as null (SQLite), and an integer sum
    # past 64 bits (or a huge whole float taken for an integer) answered 500.
    assert kv.put("/keyv/f/_incr", json={"value": 1e308}).json() == {"value": 1e308}
    overflow = kv.put("/keyv/f/_incr", json={"value": 1e308})
    assert overflow.status_code == 409
    assert reasons(overflow) == {"value": "would make the stored number overflow"}
    assert kv.get("/keyv/f").json() == 1e308  # unchanged
    big = 2**63 - 1
    assert kv.put("/keyv/i/_incr", json={"value": big}).json() == {"value": big}
    assert kv.put("/keyv/i/_incr", json={"value": 1}).status_code == 409
    assert kv.put("/keyv/i/_decr", json={"value": 1}).json() == {"value": big - 1}
    assert kv.put("/keyv/w/_incr", json={"value": 1e300}).json() == {"value": 1e300}
    assert kv.put("/keyv/w/_incr", json={"value": 1}).json() == {"value": 1e300}


def test_keyspaces_and_keys_with_control_characters_are_refused(kv: CheckedClient) -> None:
    # A trailing newline passed the keyspace check (``$`` matches before it).
    assert kv.put("/keyv/k", params={"keyspace": "ok\n"}, json="v").status_code == 400
    assert "keyspace" in reasons(kv.get("/keyv/k", params={"keyspace": "ok\n"}))
    assert kv.put("/keyv/a%0Ab", json="v").status_code == 400
    assert kv.put("/keyv/a%09", json="v").status_code == 400
    assert kv.get("/keyv").json() == []
