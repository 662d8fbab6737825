"""Concurrent updates of one document lose nothing (a real server, real threads)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS
from tests.support.live import live_server

pytestmark = pytest.mark.citus_audit

NOTES = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/counters/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "put": {
                "x-datastore-acl": "public",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"201": {"description": "ok"}, "200": {"description": "ok"}},
            },
            "patch": {
                "x-datastore-acl": "public",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {"description": "ok"}},
            },
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
        }
    },
}


@pytest.mark.pgbouncer
def test_concurrent_patches_of_different_fields_lose_nothing(
    database: Database, space: str
) -> None:
    from datastore.app import ServedBlueprint

    app = create_app(Settings(migrate=False), [ServedBlueprint(space, NOTES)], database=database)
    fields = [f"f{n}" for n in range(20)]
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.put("/counters/c1", json={"start": True}).status_code == 201

        def patch(field: str) -> int:
            with httpx.Client(base_url=url, timeout=30) as own:
                return own.patch("/counters/c1", json={field: field}).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(patch, fields))
        assert statuses == [200] * 20
        final = client.get("/counters/c1")
        body = final.json()
        assert {f: body.get(f) for f in fields} == {f: f for f in fields}
        assert final.headers["etag"] == '"21"'


def test_example_blueprint_serves_under_a_real_server(database: Database, space: str) -> None:
    app = create_app(
        Settings(migrate=False),
        [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
        database=database,
    )
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        created = client.post("/events", json={"name": "x", "eventDate": "2026-01-01T00:00:00Z"})
        assert created.status_code == 201
        assert client.get(created.headers["location"]).status_code == 200
