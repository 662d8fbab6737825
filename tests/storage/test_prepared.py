"""Listing statements compiled once per shape (``storage/prepared.py``): a request served from
its shape's template gets exactly the SQL and parameters a fresh compilation of its own
selection gives, for random filters, rules (with defaults) and keyset bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import psycopg

from datastore.query import ast
from datastore.query.selection import CollectionFacts, Keyset, Rule, Selection
from datastore.storage import plans
from datastore.storage.documents import counting, listing
from datastore.storage.prepared import (
    SlotStr,
    Templates,
    compile_statement,
    slotted,
    with_values,
)
from datastore.storage.tables import documents
from tests.query.test_sql_differential import trees

DIALECT = psycopg.dialect()  # type: ignore[no-untyped-call]
PLAIN = CollectionFacts(indexed=frozenset({("a",), ("b",)}))
DEFAULTED = CollectionFacts(default_paths={("a",): 1, ("c", "x"): "d1"})


def _listing(facts: CollectionFacts) -> Any:
    def build(selection: Selection) -> Any:
        where = plans.where(selection, facts, "postgresql")
        keys = [*plans.sort_keys(selection, facts, "postgresql"), (documents.c.pk, False)]
        assert selection.limit is not None
        return listing("s", "things", where, keys, selection.limit, selection.offset)

    return build


def _page(facts: CollectionFacts) -> Any:
    def build(selection: Selection) -> Any:
        where, keys = plans.page(selection, facts, "postgresql")
        assert selection.limit is not None
        return listing("s", "things", where, keys, selection.limit, 0)

    return build


def _same_kind(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the same type and falsiness."""
    if isinstance(value, datetime):
        return st.integers(-5, 5).map(lambda n: value + timedelta(seconds=n))
    if isinstance(value, str):
        if not value:
            return st.just("")
        return st.sampled_from(["a", "b", "10", "é", "d1", "x%_", "2026-01-01T00:00:00Z"])
    if isinstance(value, Decimal):
        return st.sampled_from([Decimal("1.5"), Decimal("-2"), Decimal("7")])
    if not value:
        return st.just(value)
    if isinstance(value, int):
        return st.sampled_from([1, -3, 2**53 + 1])
    return st.sampled_from([0.5, -1.5, 1e-7])


def _revalued(draw: st.DrawFn, selection: Selection, facts: CollectionFacts) -> Selection:
    """The selection with other values of the same kinds in its slots (one shape)."""
    taken, values = slotted(selection, facts)
    others = [draw(_same_kind(value)) for value in values]
    return with_values(taken, others, slots=False)


def _check(templates: Templates, key: str, first: Selection, second: Selection, build: Any) -> None:
    facts = PLAIN if key != "rule" else DEFAULTED
    templates.compiled(key, first, facts, build)
    served = templates.compiled(key, second, facts, build)
    fresh = compile_statement(build(second), DIALECT)
    assert served.sql == fresh.sql
    assert served.params == fresh.params
    for name, value in served.params.items():
        assert type(value) is type(fresh.params[name]), name  # no slot leaves the template


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), node=trees())
def test_a_template_binds_what_a_fresh_compile_binds(data: st.DataObject, node: ast.Node) -> None:
    first = Selection(node, None, (ast.SortKey(ast.Field(("b",))),), limit=20, offset=3)
    second = _revalued(data.draw, first, PLAIN)
    _check(Templates(DIALECT), "find", first, second, _listing(PLAIN))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), node=trees(), rule=trees())
def test_rules_with_defaults_bind_as_fresh_compiles_do(
    data: st.DataObject, node: ast.Node, rule: ast.Node
) -> None:
    first = Selection(node, Rule(rule, DEFAULTED), (), limit=5)
    second = _revalued(data.draw, first, DEFAULTED)
    _check(Templates(DIALECT), "rule", first, second, _listing(DEFAULTED))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.data(),
    node=trees(),
    rank=st.integers(0, 5),
    number=st.sampled_from([Decimal("1.5"), Decimal(0), 2.5]),
    text=st.sampled_from(["b", ""]),
    backwards=st.booleans(),
)
def test_keyset_bounds_bind_as_fresh_compiles_do(
    data: st.DataObject,
    node: ast.Node,
    rank: int,
    number: Decimal | float,
    text: str,
    backwards: bool,
) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    sort = (ast.SortKey(ast.Field(("b",))), ast.SortKey(ast.Source("$createdDatetime"), True))
    values = (rank, number, text, rank, moment, 17)
    first = Selection(node, None, sort, limit=21, keyset=Keyset(values, backwards, "page[after]"))
    second = _revalued(data.draw, first, PLAIN)
    _check(Templates(DIALECT), "page", first, second, _page(PLAIN))


def test_one_shape_is_compiled_once() -> None:
    templates = Templates(DIALECT)
    built: list[Selection] = []

    def build(selection: Selection) -> Any:
        built.append(selection)
        return _listing(PLAIN)(selection)

    for category in ("cat1", "cat2", "cat3"):
        node = ast.Compare(ast.Field(("a",)), "eq", category)
        compiled = templates.compiled("find", Selection(node, limit=20), PLAIN, build)
        assert category in compiled.params.values()
    assert len(built) == 2  # the request's values, and other values to check the first against


def test_a_value_the_sql_depends_on_keeps_its_own_statement() -> None:
    """When a value reaches the SQL as a constant, the shape is not templated: each request
    compiles its own statement, with its own value."""
    templates = Templates(DIALECT)

    def build(selection: Selection) -> Any:
        value = selection.filter.value if isinstance(selection.filter, ast.Compare) else None
        assert isinstance(value, str)
        leaked = sa.literal(str.upper(value))  # a value turned into a constant
        return counting("s", "things", sa.and_(documents.c.doc_id == leaked))

    for value in ("a", "b"):
        node = ast.Compare(ast.Field(("a",)), "eq", value)
        compiled = templates.compiled("count", Selection(node), PLAIN, build)
        assert list(compiled.params.values()) == ["s", "things", value.upper()]
        assert not any(isinstance(v, SlotStr) for v in compiled.params.values())


def test_lru_keeps_the_most_recent_shapes() -> None:
    templates = Templates(DIALECT, size=2)
    paths = [("a",), ("b",), ("c",)]
    for path in paths:
        node = ast.Compare(ast.Field(path), "eq", "v")
        templates.compiled("find", Selection(node, limit=1), PLAIN, _listing(PLAIN))
    assert len(templates) == 2


def test_a_bound_the_other_values_would_push_out_of_range_is_still_served() -> None:
    """Checking a new shape compiles it again with other values; a keyset bound at the edge of
    its column's range must not make the request fail when those are refused."""
    edge = 2**63 - 1
    sort = (ast.SortKey(ast.Source("$createdDatetime")),)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    selection = Selection(limit=21, sort=sort, keyset=Keyset((moment, edge), False, "page[after]"))
    templates = Templates(DIALECT)
    compiled = templates.compiled("page", selection, PLAIN, _page(PLAIN))
    assert edge in compiled.params.values()
