"""Request ids, JSON access logs, metrics, the published OpenAPI document, CORS."""

from __future__ import annotations

import json
import logging

import pytest
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.config import ConfigError, Settings
from datastore.storage.engine import Database
from tests.http.test_documents import EVENT
from tests.support.client import BLUEPRINTS

pytestmark = pytest.mark.citus_audit


def app_for(
    database: Database, space: str, name: str = "events.yaml", **settings: object
) -> object:
    return create_app(
        Settings(migrate=False, **settings),  # type: ignore[arg-type]
        [serve_blueprint_file(BLUEPRINTS / name, space)],
        database=database,
    )


def test_request_ids_and_access_log(
    database: Database, space: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        TestClient(app_for(database, space)) as client,
        caplog.at_level(logging.INFO, logger="datastore.access"),
    ):
        mine = client.get("/events", headers={"X-Request-Id": "abc-123"})
        assert mine.headers["x-request-id"] == "abc-123"
        generated = client.get("/events/missing", headers={"X-Request-Id": "bad id\r\n"})
        assert generated.status_code == 404
        assert len(generated.headers["x-request-id"]) == 32
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "datastore.access"]
    first = lines[0]
    assert (first["request_id"], first["status"], first["operation"]) == (
        "abc-123",
        200,
        "get /events",
    )
    assert first["space"] == space and first["ms"] >= 0
    assert lines[1]["status"] == 404


def test_metrics(database: Database, space: str) -> None:
    with TestClient(app_for(database, space)) as client:
        client.put("/events/e1", json=EVENT)
        client.get("/events/e1")
        text = client.get("/__metrics").text
    assert 'datastore_requests_total{operation="get /events/{eventid}",status="200"} 1.0' in text
    assert "datastore_request_duration_seconds_bucket" in text
    assert "datastore_db_connections_in_use" in text


def test_published_openapi_document(database: Database, space: str) -> None:
    with TestClient(app_for(database, space, "codehooks.yaml")) as client:
        document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert "/keyv" in document["paths"] and "/queue/{topic}/{id}" in document["paths"]


def test_cors(database: Database, space: str) -> None:
    app = app_for(database, space, cors_origin="https://app.example")
    with TestClient(app) as client:
        preflight = client.options(
            "/events",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, if-match",
            },
        )
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "if-match" in preflight.headers["access-control-allow-headers"].lower()
        actual = client.get("/events", headers={"Origin": "https://app.example"})
        assert actual.headers["access-control-allow-origin"] == "https://app.example"
        assert "ETag" in actual.headers["access-control-expose-headers"]
        other = client.get("/events", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    app_for(database, space, cors_origin="*")  # every operation of events.yaml is public
    with pytest.raises(ConfigError, match="public"):
        app_for(database, space, "multi-user.yaml", cors_origin="*")


def test_swagger_ui_page_and_assets(database: Database, space: str) -> None:
    with TestClient(app_for(database, space)) as client:
        page = client.get("/ui")
        assert page.status_code == 200
        assert 'url: "/openapi.json"' in page.text and "Community events" in page.text
        script = client.get("/__ui/swagger-ui-bundle.js")
        assert script.status_code == 200 and "max-age" in script.headers["cache-control"]
        assert client.get("/__ui/../../etc/passwd").status_code == 404
        assert client.get("/__ui/index.j2").status_code == 404
