"""The blueprint linter: every rule reported with file, line and column, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from datastore.blueprint.diagnostics import BlueprintError
from datastore.blueprint.lint import lint_paths
from datastore.blueprint.loader import connexion_view, load_blueprint, path_sort_key

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
BLUEPRINTS = HERE.parents[1] / "blueprints"


def found(path: Path) -> set[tuple[str, int, int, str, str]]:
    return {(Path(d.file).name, d.line, d.column, d.severity, d.rule) for d in lint_paths([path])}


def test_every_problem_with_its_position() -> None:
    assert {
        ("many.yaml", 8, 30, "error", "acl-syntax"),
        ("many.yaml", 12, 5, "error", "method"),
        ("many.yaml", 18, 5, "error", "acl-missing"),
        ("many.yaml", 30, 7, "error", "unknown-extension"),
        ("many.yaml", 45, 3, "error", "path-shape"),
        ("many.yaml", 51, 3, "error", "parent-missing"),
        ("bad.json", 5, 34, "error", "source"),
        ("bad.json", 6, 19, "error", "schema"),
        ("many.yaml", 13, 24, "warning", "public-write"),
    } <= found(BROKEN / "many.yaml")


def test_duplicate_keys_and_syntax_errors() -> None:
    assert ("duplicate.yaml", 12, 3, "error", "duplicate-key") in found(BROKEN / "duplicate.yaml")
    assert found(BROKEN / "syntax.yaml") == {("syntax.yaml", 4, 1, "error", "yaml")}


@pytest.mark.parametrize("name", ["events.yaml", "codehooks.yaml", "multi-user.yaml"])
def test_examples_lint_without_errors(name: str) -> None:
    assert [d for d in lint_paths([BLUEPRINTS / name]) if d.severity == "error"] == []


def test_loading_refuses_a_broken_file() -> None:
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(BROKEN / "syntax.yaml")
    assert "syntax.yaml:4:1" in str(caught.value)


def test_missing_referenced_file(tmp_path: Path) -> None:
    (tmp_path / "api.yaml").write_text(
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    post:\n"
        "      x-datastore-acl: public\n      requestBody:\n        content:\n"
        "          application/json:\n            schema:\n              $ref: ./nope.json\n"
        "      responses:\n        '201': {description: ok}\n"
    )
    problems = lint_paths([tmp_path / "api.yaml"])
    assert any(d.rule == "ref" and d.line == 11 for d in problems)


def test_bundling_nested_and_shared_files(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "a.json").write_text(
        '{"type": "object", "properties": {"b": {"$ref": "b.json"}, '
        '"self": {"$ref": "#/definitions/x"}}, "definitions": {"x": {"type": "string"}}}'
    )
    (tmp_path / "schemas" / "b.json").write_text(
        '{"type": "object", "properties": {"a": {"$ref": "a.json"}}}'
    )
    (tmp_path / "api.yaml").write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    post:\n"
        "      x-datastore-acl: public\n      requestBody:\n        content:\n"
        "          application/json:\n            schema:\n              $ref: ./schemas/a.json\n"
        "      responses:\n        '201': {description: ok}\n"
        "  /b:\n    post:\n      x-datastore-acl: public\n      requestBody:\n        content:\n"
        "          application/json:\n            schema:\n              $ref: schemas/b.json\n"
        "      responses:\n        '201': {description: ok}\n"
    )
    document = load_blueprint(tmp_path / "api.yaml").document
    schemas = document["components"]["schemas"]
    assert set(schemas) == {"a", "b"}
    assert schemas["a"]["properties"]["b"] == {"$ref": "#/components/schemas/b"}
    assert schemas["b"]["properties"]["a"] == {"$ref": "#/components/schemas/a"}
    assert schemas["a"]["properties"]["self"] == {"$ref": "#/components/schemas/a/definitions/x"}


def test_literal_segments_route_before_templates() -> None:
    paths = [
        "/{collection}/{id}",
        "/{collection}",
        "/keyv/{key}",
        "/{collection}/_count",
        "/events/{id}",
        "/events",
    ]
    ordered = sorted(paths, key=path_sort_key)
    assert ordered.index("/events/{id}") < ordered.index("/{collection}/{id}")
    assert ordered.index("/keyv/{key}") < ordered.index("/{collection}/{id}")
    assert ordered.index("/{collection}/_count") < ordered.index("/{collection}/{id}")


def test_connexion_view_of_the_31_seed_is_valid_30() -> None:
    from openapi_spec_validator import validate

    view = connexion_view(load_blueprint(BLUEPRINTS / "codehooks.yaml").document)
    validate(view)
    assert view["openapi"] == "3.0.3"
    ids = [
        op["operationId"]
        for item in view["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))


RULES = HERE / "rules"


@pytest.mark.parametrize("path", sorted(RULES.glob("*.yaml")), ids=lambda p: p.stem)
def test_one_broken_blueprint_per_rule(path: Path) -> None:
    """Each file in rules/ breaks exactly one rule: that one, and only that one, is reported."""
    rules = {d.rule for d in lint_paths([path])}
    assert rules == {path.stem}, rules
