"""The SQL compiler agrees with the reference evaluator on random documents and queries, on
both backends (and therefore the backends agree with each other)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from datastore.blueprint.schemas import apply_defaults, schema_info
from datastore.jsonvalues import with_defaults
from datastore.query import ast
from datastore.query.evaluate import MISSING, lookup, matches, sort_key
from datastore.storage import keyset
from datastore.storage.compiler import Compiler, DocumentColumns
from datastore.storage.documents import DocumentStore
from datastore.storage.engine import Database
from datastore.storage.tables import documents

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = ("a", "b", "c")
# Small domains, so that generated documents and queries often meet on equal values.
scalars = st.one_of(
    st.integers(0, 2),
    st.sampled_from([0.5, 1.0, 2.0, -1.5, -0.0]),  # floats equal to the integers too
    st.sampled_from([2**53 + 1, float(2**53)]),  # a double cannot hold 2**53 + 1
    # Both cases: string operators are case-sensitive (SQLite's LIKE is not).
    st.sampled_from(["", "a", "b", "Ab", "B", "10", "é", "É", "d1", "2026-01-01T00:00:00.000000Z"]),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    # Keys in either order: equality of objects ignores it.
    st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2),
)
document_strategy = st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=3)
paths = st.one_of(
    st.sampled_from(FIELDS).map(lambda f: (f,)),
    st.sampled_from([("c", "x"), ("a", "y")]),
)
operands = paths.map(ast.Field)
sources = st.sampled_from([ast.Source(n) for n in ("$id", "$createdDatetime", "$extends")])
# NOW as GET shows it, the same instant with an offset, another instant, and non-dates.
moments = st.sampled_from(
    ["2026-01-01T00:00:00.000000Z", "2026-01-01T02:00:00+02:00", "2025-12-31T23:00:00Z", "", 1]
)
ops = st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])


def leaves(operands: st.SearchStrategy[ast.Field] = operands) -> st.SearchStrategy[ast.Node]:
    return st.one_of(
        st.builds(ast.Compare, operands, ops, values, st.booleans()),
        st.builds(ast.In, operands, st.lists(scalars, max_size=3).map(tuple)),
        st.builds(ast.Exists, operands, st.booleans()),
        st.builds(
            ast.Regex,
            operands,
            st.sampled_from(["^a", "b$", "A", "^$", "^A", "B$", "é"]),
            st.sampled_from(["", "i"]),
        ),
        st.builds(
            ast.StringMatch,
            operands,
            st.sampled_from(["prefix", "suffix"]),
            st.sampled_from(["a", "b", "", "%", "_", "A", "B", "Ab", "É"]),
        ),
        st.builds(ast.ArrayAll, operands, st.lists(scalars, min_size=1, max_size=2).map(tuple)),
        st.builds(ast.ArrayWithin, operands, st.lists(scalars, max_size=3).map(tuple)),
        st.builds(ast.ArraySize, operands, st.integers(0, 3)),
        st.builds(
            ast.ElemMatch,
            operands,
            st.builds(ast.Compare, st.just(ast.Field(())), ops, scalars, st.booleans()),
        ),
        st.builds(
            ast.CompareFields, st.one_of(operands, sources), ops, st.one_of(operands, sources)
        ),
        st.builds(ast.Compare, st.just(ast.Source("$id")), ops, st.sampled_from(["d1", "d3", 5])),
        st.builds(
            ast.Compare, st.just(ast.Source("$createdDatetime")), ops, moments, st.booleans()
        ),
        st.builds(
            ast.Compare,
            st.just(ast.Source("$extends")),
            ops,
            st.sampled_from(["", None, "x"]),
            st.just(False),
        ),
    )


def trees(operands: st.SearchStrategy[ast.Field] = operands) -> st.SearchStrategy[ast.Node]:
    return st.recursive(
        leaves(operands),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda xs: ast.And(tuple(xs))),
            st.lists(inner, max_size=3).map(lambda xs: ast.Or(tuple(xs))),
            inner.map(ast.Not),
        ),
        max_leaves=6,
    )


queries = trees()
DEFAULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "b": {"default": "dflt"},
        "c": {"default": {"y": 0}, "properties": {"x": {"default": 1}}},
        "a": {"properties": {"y": {"default": [1.0]}}},
    },
}
DEFAULTS = schema_info({}, DEFAULTS_SCHEMA).default_paths


INDEXED = frozenset({("a",), ("b",), ("c", "x")})
"""Fields the indexed tests declare in ``x-datastore-indexes``."""


def _columns(
    with_defaults: bool, indexed: frozenset[tuple[str, ...]] = frozenset()
) -> DocumentColumns:
    return DocumentColumns(
        indexed=indexed,
        body=documents.c.body,
        sources={
            "$id": documents.c.doc_id,
            "$createdDatetime": documents.c.created_at,
            "$updatedDatetime": documents.c.updated_at,
            "$extends": documents.c.extends,
        },
        defaults=DEFAULTS if with_defaults else {},
    )


def _sources(index: int) -> dict[str, Any]:
    """The source values of document ``index`` as stored by ``_load``."""
    return {"$id": f"d{index}", "$createdDatetime": NOW, "$updatedDatetime": NOW, "$extends": None}


def _load(database: Database, docs: list[dict[str, Any]]) -> str:
    space = f"h{uuid.uuid4().hex[:10]}"
    store = DocumentStore()
    with database.write() as conn:
        for index, body in enumerate(docs):
            store.insert(conn, space, "c", f"d{index}", body, NOW)
    return space


def _select(database: Database, space: str, where: Any, order: list[Any]) -> list[str]:
    query = (
        sa.select(documents.c.doc_id)
        .where(documents.c.space == space, documents.c.collection == "c", where)
        .order_by(*order, documents.c.pk)
    )
    with database.read() as conn:
        return [row[0] for row in conn.execute(query)]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    docs=st.lists(document_strategy, min_size=4, max_size=10),
    query=queries,
    with_defaults=st.booleans(),
)
@example(  # found by hypothesis: SQLite compared two fields' JSON texts, "1" against "1.0"
    docs=[{"a": 0.5}, {"a": None}, {"a": 2}, {"a": 1, "b": None, "c": 1.0}],
    query=ast.CompareFields(ast.Field(("a",)), "eq", ast.Field(("c",))),
    with_defaults=True,
)
@example(  # SQLite compared JSON texts: [1] and [1.0], or two key orders, differed
    docs=[{"a": [1]}, {"a": [1.0]}, {"a": {"x": 1, "y": 2}}, {"a": {"y": 2.0, "x": 1}}],
    query=ast.Or(
        (
            ast.Compare(ast.Field(("a",)), "eq", [1.0], elementwise=False),
            ast.Compare(ast.Field(("a",)), "eq", {"y": 2, "x": 1.0}),
        )
    ),
    with_defaults=False,
)
@example(
    docs=[{"a": [1], "c": [1.0]}, {"a": {"x": 1, "y": [2]}, "c": {"y": [2.0], "x": 1}}, {"a": 1}],
    query=ast.Not(ast.CompareFields(ast.Field(("a",)), "eq", ast.Field(("c",)))),
    with_defaults=False,
)
@example(  # a nested default applies only inside an object that is present or defaulted
    docs=[{"a": {}}, {"a": {"y": None}}, {"a": 1}, {"b": 1}, {"c": {"x": 2}}, {"c": None}],
    query=ast.Or(
        (
            ast.Compare(ast.Field(("a", "y")), "eq", [1], elementwise=False),
            ast.Compare(ast.Field(("c",)), "eq", {"x": 1, "y": 0}, elementwise=False),
        )
    ),
    with_defaults=True,
)
@example(  # rules see datetimes as the text GET shows, and no $extends as ""
    docs=[{"a": "2026-01-01T00:00:00.000000Z"}, {"a": "d1"}, {"a": ""}, {"b": "x"}],
    query=ast.And(
        (
            ast.Compare(ast.Source("$extends"), "ne", "x", elementwise=False),
            ast.Or(
                (
                    ast.Compare(
                        ast.Source("$createdDatetime"), "gt", "2026-01-01T02:00:00+02:00", False
                    ),
                    ast.CompareFields(ast.Field(("a",)), "eq", ast.Source("$createdDatetime")),
                    ast.CompareFields(ast.Source("$id"), "eq", ast.Field(("a",))),
                )
            ),
        )
    ),
    with_defaults=False,
)
@example(  # SQLite printed array elements that are reals with 15 digits: [0.30000000000000004]
    # held 0.3, and the largest double became infinity (greater than every number)
    docs=[{"a": [0.30000000000000004]}, {"a": [0.3]}, {"a": [1.7976931348623157e308]}],
    query=ast.Or(
        (
            ast.Compare(ast.Field(("a",)), "eq", 0.3),
            ast.Compare(ast.Field(("a",)), "gt", 1.7976931348623157e308),
        )
    ),
    with_defaults=False,
)
@example(  # SQLite's LIKE ignored case: {"$startsWith": "A"} matched "ab" there only
    docs=[{"a": "ab"}, {"a": "Ab"}, {"a": ["b", "aB"]}, {"b": "AB"}],
    query=ast.Or(
        (
            ast.StringMatch(ast.Field(("a",)), "prefix", "A"),
            ast.StringMatch(ast.Field(("a",)), "suffix", "B"),
            ast.StringMatch(ast.Source("$id"), "prefix", "D"),
        )
    ),
    with_defaults=False,
)
def test_filters_agree_with_the_reference(
    database: Database, docs: list[dict[str, Any]], query: ast.Node, with_defaults: bool
) -> None:
    space = _load(database, docs)
    compiler = Compiler(_columns(with_defaults), database.dialect)
    got = _select(database, space, compiler.filter(query), [])
    defaults = DEFAULTS if with_defaults else {}
    expected = [
        f"d{i}" for i, body in enumerate(docs) if matches(query, body, _sources(i), defaults)
    ]
    assert got == expected, query


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    docs=st.lists(document_strategy, min_size=1, max_size=8),
    keys=st.lists(st.builds(ast.SortKey, operands, st.booleans()), min_size=1, max_size=2),
)
def test_sorting_agrees_with_the_reference(
    database: Database, docs: list[dict[str, Any]], keys: list[ast.SortKey]
) -> None:
    space = _load(database, docs)
    compiler = Compiler(_columns(False), database.dialect)
    got = _select(database, space, sa.true(), compiler.order_by(keys))
    assert got == _reference_order(docs, keys)


def _reference_order(
    docs: list[dict[str, Any]],
    keys: list[ast.SortKey],
    defaults: Mapping[tuple[str, ...], Any] | None = None,
) -> list[str]:
    def order(index: int) -> tuple[Any, ...]:
        parts: list[Any] = []
        body = with_defaults(docs[index], defaults) if defaults else docs[index]
        for key in keys:
            assert isinstance(key.field, ast.Field)
            value = lookup(body, key.field.path)
            rank = sort_key(value)
            parts.append(tuple(_Desc(p) if key.descending else p for p in rank))
        return (*parts, index)

    return [f"d{i}" for i in sorted(range(len(docs)), key=order)]


class _Desc:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    docs=st.lists(document_strategy, min_size=4, max_size=10),
    query=queries,
    keys=st.lists(st.builds(ast.SortKey, operands, st.booleans()), max_size=2),
    limit=st.integers(1, 4),
    offset=st.integers(0, 3),
    with_defaults=st.booleans(),
)
@example(  # an indexed range is a union of the typed branch and the array branch
    docs=[{"a": 1}, {"a": [0, 5]}, {"a": "b"}, {"a": 2.0}, {"a": ["b", "Ab"]}, {}],
    query=ast.And(
        (ast.Compare(ast.Field(("a",)), "gte", 1), ast.Compare(ast.Field(("a",)), "lt", 5))
    ),
    keys=[ast.SortKey(ast.Field(("a",)), True)],
    limit=2,
    offset=1,
    with_defaults=False,
)
def test_indexed_listings_agree_with_the_reference(
    database: Database,
    docs: list[dict[str, Any]],
    query: ast.Node,
    keys: list[ast.SortKey],
    limit: int,
    offset: int,
    with_defaults: bool,
) -> None:
    """Listings with ``x-datastore-indexes`` fields, as the store runs them (indexed equality
    and ranges as a union of ordered, limited SELECTs): the reference's documents in the
    reference's order, on both backends."""
    space = _load(database, docs)
    compiler = Compiler(_columns(with_defaults, INDEXED), database.dialect)
    with database.read() as conn:
        found = DocumentStore().find(
            conn,
            space,
            "c",
            where=compiler.filter(query),
            keys=compiler.sort_keys(keys),
            limit=limit,
            offset=offset,
        )
    defaults = DEFAULTS if with_defaults else {}
    matching = {
        f"d{i}" for i, body in enumerate(docs) if matches(query, body, _sources(i), defaults)
    }
    ordered = [doc_id for doc_id in _reference_order(docs, keys, defaults) if doc_id in matching]
    assert [d.doc_id for d in found] == ordered[offset : offset + limit], query


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    docs=st.lists(document_strategy, min_size=1, max_size=10),
    keys=st.lists(st.builds(ast.SortKey, operands, st.booleans()), min_size=1, max_size=2),
    size=st.integers(1, 3),
)
def test_keyset_pages_agree_with_the_reference(
    database: Database, docs: list[dict[str, Any]], keys: list[ast.SortKey], size: int
) -> None:
    """Walking keyset pages forwards, then backwards from the last row, visits every document
    once in the reference's order (SQLite's pages are a union of one branch per order
    column, PostgreSQL's a row-value comparison)."""
    space = _load(database, docs)
    compiler = Compiler(_columns(False, INDEXED), database.dialect)
    order = [*compiler.sort_keys(keys), (documents.c.pk, False)]
    expected = _reference_order(docs, keys)
    assert _walk(database, space, order, size, backwards=False) == expected
    assert _walk(database, space, order, size, backwards=True) == expected[::-1]


def _walk(
    database: Database, space: str, order: list[Any], size: int, *, backwards: bool
) -> list[str]:
    """Every document, ``size`` at a time, each page after the last row of the one before."""
    directed = [(expression, descending != backwards) for expression, descending in order]
    seen: list[str] = []
    where = None
    store = DocumentStore()
    while True:
        with database.read() as conn:
            rows = store.page(conn, space, "c", where=where, keys=directed, limit=size)
        seen.extend(doc.doc_id for doc, _ in rows)
        if len(rows) < size or len(seen) > 50:
            return seen
        values = rows[-1][1]
        where = keyset.after(order, values, backwards=backwards, dialect=database.dialect)


def test_default_paths_are_the_schema_defaults() -> None:
    assert DEFAULTS == {("b",): "dflt", ("c",): {"y": 0}, ("c", "x"): 1, ("a", "y"): [1.0]}


@settings(max_examples=200, deadline=None)
@given(document=document_strategy)
def test_the_reference_applies_defaults_as_responses_do(document: dict[str, Any]) -> None:
    info = schema_info({}, DEFAULTS_SCHEMA)
    assert with_defaults(document, DEFAULTS) == apply_defaults(document, info)


def test_missing_sentinel_is_not_a_json_value() -> None:
    assert lookup({"a": 1}, ("b",)) is MISSING


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    docs=st.lists(document_strategy, min_size=3, max_size=8),
    parents=st.lists(st.integers(-1, 7), min_size=8, max_size=8),
    query=queries,
)
def test_filters_see_inherited_values(
    database: Database, docs: list[dict[str, Any]], parents: list[int], query: ast.Node
) -> None:
    """With inheritance, filters match what the reference sees on the effective bodies."""
    from datastore.documents.extends import inherit
    from datastore.storage.lineage import LineageStore

    space = f"h{uuid.uuid4().hex[:10]}"
    store, lineage = DocumentStore(), LineageStore(space)
    # Document i may extend an earlier one (no cycles by construction).
    parent_of = {i: parents[i] for i in range(len(docs)) if 0 <= parents[i] < i}
    with database.write() as conn:
        stored = []
        for index, body in enumerate(docs):
            extends = f"/c/d{parent_of[index]}" if index in parent_of else None
            doc = store.insert(conn, space, "c", f"d{index}", body, NOW, extends=extends)
            assert doc is not None
            stored.append(doc)
            if index in parent_of:
                lineage.reparent(conn, doc.pk, stored[parent_of[index]].pk)

    def effective(index: int) -> dict[str, Any]:
        chain, at = [], index
        while at in parent_of:
            at = parent_of[at]
            chain.append(docs[at])
        return inherit(docs[index], chain)

    columns = _columns(False)
    from datastore.storage.compiler import effective_body

    columns = DocumentColumns(
        body=effective_body(database.dialect), sources=columns.sources, stored_body=False
    )
    got = _select(database, space, Compiler(columns, database.dialect).filter(query), [])
    expected = [
        f"d{i}"
        for i in range(len(docs))
        if matches(query, effective(i), {**_sources(i), "$extends": stored[i].extends})
    ]
    assert got == expected, query


# -- keys with odd characters -----------------------------------------------------------------

ODD = ("c\\d", 'q"t', "n\nl", "d.t", "$x", "[0]", "é", "a'b", "%s", "", "\\", '"', "\t\u2028")
"""Keys SQLite's JSON path syntax mishandled or might: backslash, quote, control characters,
path punctuation, SQL quoting and format characters, the empty key."""
odd_keys = st.one_of(
    st.sampled_from(ODD),
    st.text(st.sampled_from("ab\\\"\n.$[]'é%\x7f\U0001f600"), max_size=3),
)


@st.composite
def odd_case(draw: st.DrawFn) -> tuple[list[dict[str, Any]], ast.Node, list[ast.SortKey]]:
    """Documents over three drawn keys (nested objects over two more), a query and sort keys
    over the same keys."""
    top = draw(st.lists(odd_keys, min_size=3, max_size=3, unique=True))
    inner = draw(st.lists(odd_keys, min_size=2, max_size=2, unique=True))
    nested = st.fixed_dictionaries({}, optional=dict.fromkeys(inner, scalars))
    field_values = st.one_of(scalars, st.lists(scalars, max_size=3), nested)
    docs = draw(
        st.lists(
            st.dictionaries(st.sampled_from(top), field_values, max_size=3),
            min_size=4,
            max_size=20,  # the listing below reads at most 50
        )
    )
    odd_paths = st.one_of(
        st.sampled_from(top).map(lambda k: (k,)),
        st.tuples(st.sampled_from(top), st.sampled_from(inner)),
    )
    operands = odd_paths.map(ast.Field)
    query = draw(trees(operands))
    keys = draw(st.lists(st.builds(ast.SortKey, operands, st.booleans()), min_size=1, max_size=2))
    return docs, query, keys


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=odd_case())
@example(  # the issue's own: SQLite's path "$.\"c\\d\"" found nothing, PostgreSQL the document
    case=(
        [{"c\\d": 2}, {"cd": 2}, {'q"t': 2}, {"n\nl": [2]}],
        ast.Or(
            (
                ast.Compare(ast.Field(("c\\d",)), "eq", 2),
                ast.Compare(ast.Field(('q"t',)), "gte", 2),
                ast.Compare(ast.Field(("n\nl",)), "eq", 2),
            )
        ),
        [ast.SortKey(ast.Field(("c\\d",)), True)],
    )
)
def test_odd_keys_agree_with_the_reference(
    database: Database, case: tuple[list[dict[str, Any]], ast.Node, list[ast.SortKey]]
) -> None:
    docs, query, keys = case
    space = _load(database, docs)
    compiler = Compiler(_columns(False), database.dialect)
    got = _select(database, space, compiler.filter(query), [])
    expected = [f"d{i}" for i, body in enumerate(docs) if matches(query, body, _sources(i))]
    assert got == expected, query
    ordered = _select(database, space, sa.true(), compiler.order_by(keys))
    assert ordered == _reference_order(docs, keys)
    # the same keys declared in x-datastore-indexes: the listing as the store runs it
    fields = {key.field.path for key in keys if isinstance(key.field, ast.Field)}
    indexed = Compiler(_columns(False, frozenset(fields)), database.dialect)
    with database.read() as conn:
        listed = DocumentStore().find(
            conn, space, "c", where=indexed.filter(query), keys=indexed.sort_keys(keys), limit=50
        )
    assert [d.doc_id for d in listed] == [d for d in _reference_order(docs, keys) if d in got]
