"""The quick validity check agrees with jsonschema on every schema it compiles, and compiles
none that it could not decide exactly (hypothesis: generated schemas and instances from small
shared alphabets, so that valid and invalid instances both come up often)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datastore.blueprint.quick_check import compile_quick
from datastore.blueprint.schemas import SchemaCompiler

DRAFT = jsonschema.Draft202012Validator
NAMES = st.sampled_from(["a", "b", "c"])
TEXT = st.text(alphabet="ab1-:\n\u00e9", max_size=4)
NUMBERS = st.one_of(
    st.sampled_from([0, 1, 2, -1, 0.5, 1.0]),
    st.sampled_from([2**53 + 1, 1e308, 0.1, -1.5]),
)
"""Few values, so that an instance often equals a bound (where ``<`` and ``<=`` differ)."""
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)),
    max_leaves=8,
)
FORMATS = st.sampled_from(["date", "date-time", "email", "ipv4", "uuid", "unknown-format"])
TYPES = st.sampled_from(["null", "boolean", "integer", "number", "string", "array", "object"])


def _keywords(schemas: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    counts = st.integers(0, 3)
    single = st.one_of(
        st.fixed_dictionaries({"type": st.one_of(TYPES, st.lists(TYPES, min_size=1, max_size=3))}),
        st.fixed_dictionaries({"properties": st.dictionaries(NAMES, schemas, max_size=3)}),
        st.fixed_dictionaries({"required": st.lists(NAMES, max_size=3, unique=True)}),
        st.fixed_dictionaries({"additionalProperties": st.one_of(st.booleans(), schemas)}),
        st.fixed_dictionaries({"items": schemas}),
        st.fixed_dictionaries({"minItems": counts}),
        st.fixed_dictionaries({"maxItems": counts}),
        st.fixed_dictionaries({"uniqueItems": st.booleans()}),
        st.fixed_dictionaries({"minLength": counts}),
        st.fixed_dictionaries({"maxLength": counts}),
        st.fixed_dictionaries({"pattern": st.sampled_from(["^a+$", "b", "^[0-9]", "\\d$", "é"])}),
        st.fixed_dictionaries({"format": FORMATS}),
        st.fixed_dictionaries({"minimum": NUMBERS}),
        st.fixed_dictionaries({"maximum": NUMBERS}),
        st.fixed_dictionaries({"exclusiveMinimum": NUMBERS}),
        st.fixed_dictionaries({"exclusiveMaximum": NUMBERS}),
        st.fixed_dictionaries({"multipleOf": st.sampled_from([1, 2, 0.5, 0.1, 3])}),
        st.fixed_dictionaries({"enum": st.lists(JSON, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"const": JSON}),
        st.fixed_dictionaries({"minProperties": counts}),
        st.fixed_dictionaries({"maxProperties": counts}),
        st.fixed_dictionaries({"title": TEXT, "x-note": JSON}),
    )
    return st.lists(single, min_size=1, max_size=4).map(
        lambda parts: {k: v for part in parts for k, v in part.items()}
    )


SCHEMAS = st.recursive(st.one_of(st.booleans(), st.just({})), _keywords, max_leaves=6)


def _python(schema: Any) -> Any:
    return DRAFT(schema, format_checker=DRAFT.FORMAT_CHECKER)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=SCHEMAS, instances=st.lists(JSON, min_size=1, max_size=8))
def test_agrees_with_jsonschema(schema: Any, instances: list[Any]) -> None:
    quick = compile_quick(schema, DRAFT, DRAFT.FORMAT_CHECKER)
    assert quick is not None  # every generated schema is inside the subset
    python = _python(schema)
    for instance in instances:
        assert quick(instance) == python.is_valid(instance), instance


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
LENGTHS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"enum": [1]}, True),
        ({"const": [0]}, [False]),
        ({"uniqueItems": True}, [1, True]),
        ({"uniqueItems": True}, [1, 1.0]),
        ({"uniqueItems": True}, [{"a": 1}, {"a": True}]),
        ({"type": "integer"}, 1.0),
        ({"type": "integer"}, True),
        ({"multipleOf": 0.1}, 1e308),
        ({"pattern": "^a$"}, "a\n"),
        ({"maxLength": 1}, "\U0001f600"),
        ({"format": "date"}, "2026-02-30"),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}),
        ({"items": False}, []),
        ({"items": False}, [1]),
        ({"pattern": "b"}, "ab"),
        ({"pattern": "\\d$"}, "a1"),
        ({"properties": {"a": {}}, "additionalProperties": {"type": "string"}}, {"a": 1}),
        ({"properties": {"a": {}}, "additionalProperties": {"type": "string"}}, {"b": 1}),
        *[({bound: 1}, value) for bound in BOUNDS for value in (0, 1, 1.0, 2, True)],
        *[({length: 1}, value) for length in LENGTHS for value in ("", "a", "ab", [1], {})],
    ],
)
def test_agrees_where_python_and_json_differ(schema: dict[str, Any], instance: Any) -> None:
    quick = compile_quick(schema, DRAFT, DRAFT.FORMAT_CHECKER)
    assert quick is not None
    assert quick(instance) == _python(schema).is_valid(instance)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/x", "$defs": {"x": {}}},
        {"allOf": [{}]},
        {"properties": {"a": {"anyOf": [{"type": "string"}]}}},
        {"items": {"if": {}, "then": {}}},
        {"patternProperties": {"^a": {}}},
        {"prefixItems": [{}]},
        {"unevaluatedProperties": False},
        {"dependentRequired": {"a": ["b"]}},
        {"type": "decimal"},
    ],
)
def test_leaves_every_other_keyword_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_quick(schema, DRAFT, DRAFT.FORMAT_CHECKER) is None


def test_only_draft_2020_12() -> None:
    v7 = jsonschema.Draft7Validator
    assert compile_quick({"type": "string"}, v7, v7.FORMAT_CHECKER) is None


def test_a_compiled_blueprint_schema_still_reports_every_problem() -> None:
    """The quick check only answers "valid": problems still come from jsonschema, each
    named by its property."""
    schema = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 3}, "n": {"minimum": 0}},
    }
    compiled = SchemaCompiler({"openapi": "3.1.0"}, openapi_version="3.1.0").compile(schema)
    assert compiled.errors({"name": "abc", "n": 0}) == []
    problems = {(p.name, p.reason) for p in compiled.errors({"name": "abcd", "n": -1})}
    assert {name for name, _ in problems} == {"name", "n"}
    assert compiled.errors({"n": 1}, partial=True) == []
