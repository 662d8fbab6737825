"""The published document tells the whole truth (issue #16): each blueprint in its own OpenAPI
version, valid for that version (openapi-spec-validator), as JSON and as YAML; every blueprint
in blueprints/, the `datastore init` scaffold and the test blueprints that lint clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.auth.credentials import mint_token
from datastore.blueprint.lint import load_and_lint
from datastore.config import Settings
from datastore.storage import migrate
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS, ROOT

SCAFFOLD = ROOT / "datastore" / "scaffold" / "api.yaml"


def _serves(path: Path) -> bool:
    loaded, problems = load_and_lint(path)
    return loaded is not None and not any(p.severity == "error" for p in problems)


SHIPPED = [*sorted(BLUEPRINTS.glob("*.yaml")), SCAFFOLD]
TESTS = [p for p in sorted((ROOT / "tests" / "blueprint").glob("*/*.yaml")) if _serves(p)]


@pytest.fixture(scope="module")
def quiet_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """Publishing reads no data: one unmigrated SQLite file serves every blueprint here."""
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('published') / 'db.sqlite3'}")
    yield db
    db.dispose()


def publish(database: Database, path: Path, **settings: Any) -> tuple[dict[str, Any], str]:
    app = create_app(
        Settings(migrate=False, jwt_secret="s" * 32, **settings),
        [serve_blueprint_file(path, "published")],
        database=database,
    )
    with TestClient(app) as client:
        as_json = client.get("/openapi.json")
        as_yaml = client.get("/openapi.yaml")
    assert as_json.status_code == as_yaml.status_code == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    document: dict[str, Any] = as_json.json()
    return document, as_yaml.text


def spec_errors(document: dict[str, Any]) -> list[str]:
    version = str(document["openapi"])
    validator = OpenAPIV31SpecValidator if version.startswith("3.1") else OpenAPIV30SpecValidator
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator(document).iter_errors()]


@pytest.mark.parametrize("path", SHIPPED + TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_published_document_is_valid_in_its_own_version(
    quiet_database: Database, path: Path
) -> None:
    document, text = publish(quiet_database, path)
    written = yaml.safe_load(path.read_text())["openapi"]
    assert document["openapi"] == written  # 3.0 stays 3.0, 3.1 stays 3.1
    assert spec_errors(document) == []
    assert yaml.safe_load(text) == document


def test_tests_include_both_versions() -> None:
    versions = {str(yaml.safe_load(p.read_text())["openapi"])[:3] for p in SHIPPED + TESTS}
    assert versions == {"3.0", "3.1"}
    assert len(TESTS) >= 4


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def test_squiz_schemas_are_restated_in_30s_dialect(quiet_database: Database) -> None:
    document, _ = publish(quiet_database, BLUEPRINTS / "events.yaml")
    event = document["components"]["schemas"]["event"]
    assert "$schema" not in event
    assert event["properties"]["description"] == {
        "type": "string",
        "nullable": True,
        "maxLength": 5000,
        "pattern": "^[^\\x00]*$",  # the datastore refuses U+0000 in text
    }
    assert event["properties"]["extends"]["nullable"] is True
    for node in _schemas(document["paths"]):
        assert not isinstance(node.get("type"), list), node
        assert "propertyNames" not in node and "$schema" not in node, node
    # 3.1 keeps JSON Schema as written
    seed, _ = publish(quiet_database, BLUEPRINTS / "codehooks.yaml")
    patch = seed["paths"]["/{collection}/{id}"]["patch"]["requestBody"]["content"]
    assert "propertyNames" in patch["application/json"]["schema"]


def _params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", [])}


def test_listings_publish_every_query_parameter(quiet_database: Database) -> None:
    document, _ = publish(quiet_database, BLUEPRINTS / "events.yaml", max_limit=500)
    listing = _params(document["paths"]["/events"]["get"])
    assert set(listing) == {
        "q", "h", "filters", "sort", "fields", "omit", "limit", "offset",
        "page[size]", "page[after]", "page[before]", "page[v]",
    }  # fmt: skip
    assert listing["q"]["content"]["application/json"]["schema"]["type"] == "object"
    hints = listing["h"]["content"]["application/json"]["schema"]
    assert hints["additionalProperties"] is False and "$onlycount" in hints["properties"]
    assert (listing["limit"]["schema"]["minimum"], listing["limit"]["schema"]["maximum"]) == (
        0,
        500,
    )
    assert listing["page[size]"]["schema"]["maximum"] == 500
    assert listing["page[v]"]["schema"]["enum"] == ["1", "2"]
    nested = _params(document["paths"]["/events/{eventid}/comments"]["get"])
    assert "filters" in nested
    # every shape a listing answers: the declared array first, projections, pages, counts
    shapes = document["paths"]["/events"]["get"]["responses"]["200"]["content"]
    first, projected, page, count = shapes["application/json"]["schema"]["anyOf"]
    assert first == {"type": "array", "items": {"$ref": "#/components/schemas/event"}}
    assert projected["items"] == {"$ref": "#/components/schemas/eventProjection"}
    assert "required" not in document["components"]["schemas"]["eventProjection"]
    assert page["required"] == ["data", "links"]
    assert count["items"]["required"] == ["count"]
    seed, _ = publish(quiet_database, BLUEPRINTS / "codehooks.yaml")
    for path, method in (
        ("/{collection}/_count", "get"),
        ("/{collection}/_byquery", "patch"),
        ("/{collection}/_byquery", "delete"),
    ):
        params = _params(seed["paths"][path][method])
        assert {"q", "h", "filters"} <= set(params), path
        # the seed's q is a free string; published as the JSON it must be, its words kept
        assert "schema" not in params["q"] and "content" in params["q"]
    assert "keyspace" in _params(seed["paths"]["/keyv/{key}"]["get"])
    # the change feed of each collection with a document GET (docs/changes.md)
    feed = _params(document["paths"]["/events/_changes"]["get"])
    assert set(feed) == {"q", "filters", "since", "wait", "limit", "Last-Event-ID"}
    assert feed["Last-Event-ID"]["in"] == "header"
    assert feed["since"]["schema"]["pattern"] == "^[0-9]{1,18}$"
    assert (feed["limit"]["schema"]["minimum"], feed["limit"]["schema"]["maximum"]) == (1, 500)
    assert feed["wait"]["schema"]["maximum"] == 30
    answers = document["paths"]["/events/_changes"]["get"]["responses"]
    assert set(answers["200"]["content"]) == {"application/json", "text/event-stream"}
    assert "410" in answers
    assert "/{collection}/_changes" in seed["paths"] and "/keyv/_changes" not in seed["paths"]


def test_every_error_answer_is_a_problem(quiet_database: Database) -> None:
    for path in SHIPPED:
        document, _ = publish(quiet_database, path)
        problem = document["components"]["schemas"]["DatastoreProblem"]
        assert set(problem["properties"]) >= {"title", "status", "detail", "invalid-params"}
        for item in document["paths"].values():
            for method, operation in item.items():
                if method == "parameters":
                    continue
                for status, response in operation["responses"].items():
                    if status[0] in "45":
                        assert response.get("content"), (path.name, method, status)
                        assert "400" in operation["responses"]


def test_system_routes_publish_what_they_answer(quiet_database: Database) -> None:
    seed, _ = publish(quiet_database, BLUEPRINTS / "codehooks.yaml")
    value = seed["paths"]["/keyv/{key}"]["get"]["responses"]["200"]["content"]
    assert {"type": "number", "description": "A counter (_incr/_decr)"} in value[
        "application/json"
    ]["schema"]["anyOf"]
    # /{collection}/{id} lacks methods /{collection}/_byquery and _count have: a 405 there
    assert "405" in seed["paths"]["/{collection}/{id}"]["put"]["responses"]
    assert "405" not in seed["paths"]["/keyv/{key}"]["get"]["responses"]


def test_enforced_limits_are_published(quiet_database: Database) -> None:
    document, _ = publish(quiet_database, BLUEPRINTS / "events.yaml")
    capacity = document["components"]["schemas"]["event"]["properties"]["capacity"]
    assert capacity == {
        "type": "integer",
        "minimum": 1,  # the author's own
        "format": "int64",
        "maximum": 2**63 - 1,
    }
    name = document["components"]["schemas"]["event"]["properties"]["name"]
    assert name["pattern"] == "^[^\\x00]*$"
    eventdate = document["components"]["schemas"]["event"]["properties"]["eventDate"]
    assert "pattern" not in eventdate  # a format already excludes U+0000


def test_non_ascii_digits_are_refused_not_crashed_on(quiet_database: Database) -> None:
    # "²".isdigit() is true but int("²") raises: found by the published integer parameters
    migrate.upgrade(quiet_database)
    for path in (BLUEPRINTS / "events.yaml", BLUEPRINTS / "codehooks.yaml"):
        app = create_app(
            Settings(migrate=False, jwt_secret="s" * 32),
            [serve_blueprint_file(path, "digits")],
            database=quiet_database,
        )
        with TestClient(app) as client:
            token = mint_token({"sub": "u1"}, secret="s" * 32)
            headers = {"Authorization": f"Bearer {token}"}
            for url in (
                "/events?limit=\u00b2",
                '/events?h={"limit":"\u00b2"}',
                "/events?page[size]=\u00b2",
                "/keyv?limit=\u00b2",
                "/keyv/k?ttl=\u00b2",
            ):
                method = "PUT" if "ttl" in url else "GET"
                answer = client.request(method, url, headers=headers, json="v")
                assert answer.status_code in (400, 404), (path.name, url, answer.text)
