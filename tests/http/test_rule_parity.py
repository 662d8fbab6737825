"""A list shows exactly what GET shows (issue 15, item 4).

A document GET evaluates the document GET rule in Python on what GET shows (``document_view``:
the body with schema defaults, nested ones included, and the source properties as text, after
inheritance); a collection listing translates the same rule into SQL. For every document, "GET
answers 200" must equal "the listing contains it", on both backends. Checked three ways:

* named cases that once disagreed, through HTTP;
* random rules, schemas (with nested defaults) and documents through HTTP, one blueprint
  served per example;
* the same at the level just below HTTP, with many more examples: the evaluator on
  ``document_view`` against the SQL filter ``guard.listing_filter`` builds, over stored rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from datastore.auth.acl import AclContext, evaluate, parse_rule, to_query
from datastore.auth.credentials import mint_token
from datastore.blueprint.schemas import schema_info
from datastore.clock import format_datetime
from datastore.documents.extends import inherit
from datastore.http.guard import document_view
from datastore.storage.compiler import compiler_for
from datastore.storage.documents import DocumentStore, StoredDocument
from datastore.storage.engine import Database
from datastore.storage.lineage import LineageStore
from datastore.storage.tables import documents
from tests.support.client import CheckedClient, serve

pytestmark = pytest.mark.citus_audit

SECRET = "rule-parity-secret-0123456789abcdef"
NOW = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
FIELDS = ("a", "b", "settings", "tags")
INNER = ("hidden", "level")

# -- blueprints -----------------------------------------------------------------------------


def schema(
    top: dict[str, Any], nested: dict[str, Any], *, inherits: bool = False
) -> dict[str, Any]:
    """The document schema: untyped properties (any body is valid) with the given top-level
    defaults and defaults inside ``settings`` (by dotted path: ``inner.flag``); ``inherits``
    adds the ``$extends`` source."""
    props: dict[str, Any] = {name: {} for name in FIELDS}
    for name, value in top.items():
        props[name]["default"] = value
    inside: dict[str, Any] = {name: {} for name in INNER}
    for dotted, value in nested.items():
        *parents, last = dotted.split(".")
        level = inside
        for part in parents:
            level = level.setdefault(part, {}).setdefault("properties", {})
        level.setdefault(last, {})["default"] = value
    props["settings"]["properties"] = inside
    props["id"] = {"type": "string", "x-datastore-source": "document.$id"}
    if inherits:
        props["extends"] = {"type": ["string", "null"], "x-datastore-source": "document.$extends"}
    return {"type": "object", "properties": props}


def blueprint(rule: str, document_schema: dict[str, Any]) -> dict[str, Any]:
    """A public collection ``/c`` whose documents are read under ``rule``."""
    one = {"application/json": {"schema": document_schema}}
    many = {"application/json": {"schema": {"type": "array", "items": document_schema}}}
    written = {"description": "ok", "content": one}
    return {
        "openapi": "3.0.3",
        "info": {"title": "rule parity", "version": "1"},
        "paths": {
            "/c": {
                "get": {
                    "x-datastore-acl": "public",
                    "responses": {"200": {"description": "ok", "content": many}},
                }
            },
            "/c/{id}": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "get": {"x-datastore-acl": readable_by_writer(rule), "responses": {"200": written}},
                "put": {
                    "x-datastore-acl": "public",
                    "requestBody": {"content": one},
                    "responses": {"200": written, "201": written},
                },
            },
        },
    }


WRITER = {"writer": "parity-writer"}
"""The claims of the token documents are written with: its holder may read every document, so
any document may be an ``$extends`` target (a target must be readable by the writer)."""


def readable_by_writer(rule: str) -> str:
    """``rule``, for every caller whose claims hold no ``writer`` (as the tested ones)."""
    if rule.strip().lower() == "public":
        return rule
    return f"jwt.writer === 'parity-writer' || ({rule})"


@contextmanager
def served(
    database: Database, rule: str, document_schema: dict[str, Any]
) -> Iterator[CheckedClient]:
    space = f"r{uuid.uuid4().hex[:12]}"
    with serve(
        database, space, blueprint(rule, document_schema), jwt_secret=SECRET, check=False
    ) as client:
        yield client


def put_all(client: CheckedClient, bodies: list[dict[str, Any]]) -> list[str]:
    ids = []
    for index, body in enumerate(bodies):
        response = client.put(f"/c/d{index}", json=body, headers=token(WRITER))
        assert response.status_code in (200, 201), response.text
        ids.append(f"d{index}")
    return ids


def token(claims: dict[str, Any]) -> dict[str, str]:
    signed = mint_token({**claims, "exp": int(time.time()) + 600}, secret=SECRET)
    return {"Authorization": f"Bearer {signed}"}


def visible(client: CheckedClient, ids: list[str], claims: dict[str, Any]) -> set[str]:
    """The documents GET answers with 200, after checking that the listing shows exactly
    those."""
    headers = token(claims)
    statuses = {doc_id: client.get(f"/c/{doc_id}", headers=headers).status_code for doc_id in ids}
    assert set(statuses.values()) <= {200, 403, 404}, statuses
    by_get = {doc_id for doc_id, status in statuses.items() if status == 200}
    listing = client.get("/c", headers=headers)
    assert listing.status_code == 200, listing.text
    listed = {item["id"] for item in listing.json()}
    assert listed == by_get, {"GET": sorted(by_get), "list": sorted(listed)}
    return by_get


# -- the cases that disagreed ---------------------------------------------------------------


def test_nested_default_hides_in_lists_too(database: Database) -> None:
    rule = "!(document.settings.hidden === true)"
    bodies = [
        {"settings": {}},  # hidden by the default
        {"settings": {"hidden": False}},
        {"settings": {"hidden": None}},  # a null is a value: no default
        {},  # no settings object: a nested default does not apply
        {"settings": None},
        {"settings": [1]},
    ]
    with served(database, rule, schema({}, {"hidden": True})) as client:
        ids = put_all(client, bodies)
        assert visible(client, ids, {"sub": "u"}) == {"d1", "d2", "d3", "d4", "d5"}
    # A defaulted parent gets the defaults inside it (a null parent is a value: not defaulted).
    with served(database, rule, schema({"settings": {}}, {"hidden": True})) as client:
        ids = put_all(client, bodies)
        assert visible(client, ids, {"sub": "u"}) == {"d1", "d2", "d4", "d5"}


def test_whole_objects_include_their_nested_defaults(database: Database) -> None:
    rule = "document.settings === jwt.settings"
    bodies = [{"settings": {}}, {"settings": {"level": 1.0}}, {"settings": {"hidden": True}}, {}]
    with served(database, rule, schema({}, {"hidden": False, "level": 1})) as client:
        ids = put_all(client, bodies)
        claims = {"settings": {"level": 1, "hidden": False}}
        assert visible(client, ids, claims) == {"d0", "d1"}


def test_deep_nested_defaults(database: Database) -> None:
    """Six levels of defaults (the SQL once nested each level in the one above, growing
    exponentially: SQLite's parser overflowed)."""
    level: dict[str, Any] = {"f": {"default": True}}
    for name in ("e", "d", "c", "b", "a"):
        level = {name: {"default": {}, "properties": level}}
    deep = {"type": "object", "properties": {**level, "id": schema({}, {})["properties"]["id"]}}
    rule = "document.a.b.c.d.e.f === true && document.a !== jwt.x"
    bodies = [
        {},
        {"a": {"b": {}}},
        {"a": {"b": {"c": {"d": {"e": {"f": False}}}}}},
        {"a": {"b": 1}},
    ]
    with served(database, rule, deep) as client:
        ids = put_all(client, bodies)
        assert visible(client, ids, {"x": 1}) == {"d0", "d1"}
        whole = {"b": {"c": {"d": {"e": {"f": True}}}}}
        assert visible(client, ids, {"x": whole}) == set()


def test_equality_is_structural(database: Database) -> None:
    bodies = [
        {"a": [1], "b": [1.0]},
        {"a": {"x": 1, "y": 2}, "b": {"y": 2, "x": 1.0}},
        {"a": 1, "b": 2},
    ]
    with served(database, "document.a !== document.b", schema({}, {})) as client:
        assert visible(client, put_all(client, bodies), {"sub": "u"}) == {"d2"}
    tags = [{"tags": [1.0]}, {"tags": [1]}, {"tags": [2]}, {"tags": {"y": 1, "x": 2}}]
    with served(database, "!(document.tags === jwt.blocked)", schema({}, {})) as client:
        ids = put_all(client, tags)
        assert visible(client, ids, {"blocked": [1]}) == {"d2", "d3"}
        assert visible(client, ids, {"blocked": {"x": 2.0, "y": 1}}) == {"d0", "d1", "d2"}


def test_datetimes_compare_as_the_text_get_shows(database: Database) -> None:
    with served(database, "document.$createdDatetime < jwt.before", schema({}, {})) as client:
        ids = put_all(client, [{}])
        now = datetime.now(UTC)
        # An hour earlier, but written at +02:00: a later text (string semantics).
        earlier = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
        assert visible(client, ids, {"before": earlier.isoformat()}) == {"d0"}
        # An hour later, written at -05:00: an earlier text.
        later = (now + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
        assert visible(client, ids, {"before": later.isoformat()}) == set()
        assert visible(client, ids, {"before": format_datetime(now + timedelta(1))}) == {"d0"}


def test_numbers_compare_exactly(database: Database) -> None:
    bodies = [{"a": 2**53 + 1}, {"a": float(2**53)}, {"a": 2**63 - 1}, {"a": 0.1 + 0.2}]
    with served(database, "document.a > jwt.x", schema({}, {})) as client:
        ids = put_all(client, bodies)
        assert visible(client, ids, {"x": float(2**53)}) == {"d0", "d2"}
        assert visible(client, ids, {"x": 2**53 + 1}) == {"d2"}
        assert visible(client, ids, {"x": 0.3}) == {"d0", "d1", "d2", "d3"}
    with served(database, "document.a < jwt.x", schema({}, {})) as client:
        ids = put_all(client, bodies)
        assert visible(client, ids, {"x": float(2**63)}) == {"d0", "d1", "d2", "d3"}
        assert visible(client, ids, {"x": 2**63 - 1}) == {"d0", "d1", "d3"}


def test_sources_are_what_get_shows(database: Database) -> None:
    with served(database, "document.$extends !== 'x'", schema({}, {}, inherits=True)) as client:
        ids = put_all(client, [{}, {"extends": "/c/d0"}])
        assert visible(client, ids, {"sub": "u"}) == {"d0", "d1"}
    with served(database, "document.$extends === ''", schema({}, {}, inherits=True)) as client:
        ids = put_all(client, [{}, {"extends": "/c/d0"}])
        assert visible(client, ids, {"sub": "u"}) == {"d0"}
    with served(database, "document.$id === document.a", schema({}, {})) as client:
        ids = put_all(client, [{"a": "d0"}, {"a": "d0"}])
        assert visible(client, ids, {"sub": "u"}) == {"d0"}


# -- generated: rules, schemas, documents ---------------------------------------------------

OFFSET_TIME = "2026-01-01T10:00:00+02:00"  # NOW, written with an offset
scalars = st.one_of(
    st.sampled_from([0, 1, 2, 1.0, 0.5, -1.5]),
    # Where binary floating point, 64-bit integers and decimals part ways.
    st.sampled_from([0.3, 0.1 + 0.2, 2**53 + 1, float(2**53), 2**63 - 1, 1e20]),
    st.sampled_from(["", "a", "B", "é", "10", "9", "d1", OFFSET_TIME, format_datetime(NOW)]),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        # Keys in any order, the nested defaults' names among them.
        st.dictionaries(st.sampled_from([*INNER, "inner", "flag", "x"]), inner, max_size=3),
    ),
    max_leaves=4,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=4)
top_defaults = st.fixed_dictionaries(
    {},
    optional={
        "a": scalars,
        "settings": st.sampled_from([{}, {"hidden": False}, {"level": 1.0, "x": [1]}]),
    },
)
nested_defaults = st.fixed_dictionaries(
    {},
    optional={
        "hidden": st.booleans(),
        "level": st.sampled_from([1, 1.0, "a", [1]]),
        "inner": st.sampled_from([{}, {"flag": 1}, "s"]),  # two levels down
        "inner.flag": st.sampled_from([True, 0]),
    },
)
doc_refs = st.sampled_from(
    [
        "document.a",
        "document.b",
        "document.settings",
        "document.settings.hidden",
        "document.settings.level",
        "document.settings.inner",
        "document.settings.inner.flag",
        "document.tags",
        "document.tags.hidden",  # through an array: missing
        "document.$id",
        "document.$createdDatetime",
        "document.$extends",
    ]
)
jwt_refs = st.sampled_from(["jwt.sub", "jwt.x", "jwt.blocked", "jwt.before", "jwt.missing"])
literals = st.sampled_from(
    [
        *("0", "1", "1.0", "-1.5", "0.3", "1e20"),
        *("'a'", "''", "'d1'", "'é'", f"'{OFFSET_TIME}'"),
        *("true", "false", "null"),
    ]
)
operands = st.one_of(doc_refs, doc_refs, jwt_refs, literals)
comparisons = st.one_of(
    st.builds(
        lambda a, op, b: f"{a} {op} {b}",
        operands,
        st.sampled_from(["===", "!==", "<", ">", "<=", ">="]),
        operands,
    ),
    doc_refs,  # a bare operand: === true
)
rules = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} && {b})", inner, inner),
        st.builds(lambda a, b: f"({a} || {b})", inner, inner),
        inner.map(lambda a: f"!({a})"),
    ),
    max_leaves=4,
)
claim_sets = st.fixed_dictionaries(
    {},
    optional={  # sub is a string in a valid JWT
        "sub": st.sampled_from(["", "a", "d1"]),
        "x": values,
        "blocked": values,
        "before": scalars,
    },
)
# Document i may extend an earlier one (no cycles by construction).
parents = st.lists(st.integers(-1, 5), min_size=6, max_size=6)


def _extends(index: int, parent_list: list[int], inherits: bool) -> int | None:
    parent = parent_list[index]
    return parent if inherits and 0 <= parent < index else None


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rule=rules,
    top=top_defaults,
    nested=nested_defaults,
    docs=st.lists(bodies, min_size=2, max_size=5),
    claims=claim_sets,
    inherits=st.booleans(),
    parent_list=parents,
    moment=st.tuples(st.sampled_from([-90, -1, 30]), st.sampled_from([0, 2, -5])),
)
def test_generated_rules_through_http(
    database: Database,
    rule: str,
    top: dict[str, Any],
    nested: dict[str, Any],
    docs: list[dict[str, Any]],
    claims: dict[str, Any],
    inherits: bool,
    parent_list: list[int],
    moment: tuple[int, int],
) -> None:
    """``jwt.before`` is also tried as a time near the documents' creation, written with an
    offset (where text and instant comparisons differ)."""
    for index, body in enumerate(docs):
        parent = _extends(index, parent_list, inherits)
        if parent is not None:
            body["extends"] = f"/c/d{parent}"
    with served(database, rule, schema(top, nested, inherits=inherits)) as client:
        ids = put_all(client, docs)
        visible(client, ids, claims)
        minutes, hours = moment
        near = datetime.now(UTC) + timedelta(minutes=minutes)
        before = near.astimezone(timezone(timedelta(hours=hours))).isoformat()
        visible(client, ids, {**claims, "before": before})


# -- generated, just below HTTP: many more examples -----------------------------------------


def _store(
    database: Database, docs: list[dict[str, Any]], parent_list: list[int], inherits: bool
) -> tuple[str, list[StoredDocument]]:
    space = f"r{uuid.uuid4().hex[:12]}"
    store, lineage = DocumentStore(), LineageStore(space)
    stored: list[StoredDocument] = []
    with database.write() as conn:
        for index, body in enumerate(docs):
            parent = _extends(index, parent_list, inherits)
            extends = f"/c/d{parent}" if parent is not None else None
            doc = store.insert(conn, space, "c", f"d{index}", body, NOW, extends=extends)
            assert doc is not None
            stored.append(doc)
            if parent is not None:
                lineage.reparent(conn, doc.pk, stored[parent].pk)
    return space, stored


def _effective(docs: list[dict[str, Any]], stored: list[StoredDocument], index: int) -> Any:
    """The body GET resolves: inherited values from the ancestors, nearest first."""
    chain, extends = [], stored[index].extends
    while extends:
        parent = int(extends.removeprefix("/c/d"))
        chain.append(docs[parent])
        extends = stored[parent].extends
    return inherit(docs[index], chain)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rule=rules,
    top=top_defaults,
    nested=nested_defaults,
    docs=st.lists(bodies, min_size=2, max_size=6),
    claims=claim_sets,
    inherits=st.booleans(),
    parent_list=parents,
)
@example(
    rule="!(document.settings.hidden === true) && document.$createdDatetime < jwt.before",
    top={},
    nested={"hidden": True},
    docs=[{"settings": {}}, {"settings": {"hidden": False}}, {}],
    claims={"before": OFFSET_TIME},
    inherits=False,
    parent_list=[-1] * 6,
)
@example(
    rule="document.a !== document.b || !(document.tags === jwt.blocked)",
    top={},
    nested={},
    docs=[{"a": [1], "b": [1.0], "tags": [1.0]}, {"a": {"x": 1, "y": 2}, "b": {"y": 2, "x": 1}}],
    claims={"blocked": [1]},
    inherits=False,
    parent_list=[-1] * 6,
)
def test_generated_rules_below_http(
    database: Database,
    rule: str,
    top: dict[str, Any],
    nested: dict[str, Any],
    docs: list[dict[str, Any]],
    claims: dict[str, Any],
    inherits: bool,
    parent_list: list[int],
) -> None:
    """What ``get_document`` decides (``document_view`` + ``evaluate``) against what
    ``guard.listing_filter`` selects (``to_query`` compiled by ``compiler_for``)."""
    parsed = parse_rule(rule)
    info = schema_info({}, schema(top, nested, inherits=inherits))
    space, stored = _store(database, docs, parent_list, inherits)
    by_get = {
        doc.doc_id
        for index, doc in enumerate(stored)
        if evaluate(
            parsed,
            AclContext(
                claims=claims, document=document_view(_effective(docs, stored, index), info, doc)
            ),
        )
    }
    compiler = compiler_for(info.default_paths, inherits=inherits, dialect=database.dialect)
    where = compiler.filter(to_query(parsed, AclContext(claims=claims)))
    query = sa.select(documents.c.doc_id).where(
        documents.c.space == space, documents.c.collection == "c", where
    )
    with database.read() as conn:
        listed = {row[0] for row in conn.execute(query)}
    assert listed == by_get, {"GET": sorted(by_get), "list": sorted(listed)}
