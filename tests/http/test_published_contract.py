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
from datastore.blueprint.lint import load_and_lint
from datastore.config import Settings
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
    }
    assert event["properties"]["extends"]["nullable"] is True
    for node in _schemas(document["paths"]):
        assert not isinstance(node.get("type"), list), node
        assert "propertyNames" not in node and "$schema" not in node, node
    # 3.1 keeps JSON Schema as written
    seed, _ = publish(quiet_database, BLUEPRINTS / "codehooks.yaml")
    patch = seed["paths"]["/{collection}/{id}"]["patch"]["requestBody"]["content"]
    assert "propertyNames" in patch["application/json"]["schema"]
