"""x-datastore-indexes on SQLite: expression indexes the planner uses for the SQL the compiler
emits (EXPLAIN QUERY PLAN), as tests/storage/test_indexes.py checks PostgreSQL's with EXPLAIN.

Each test has a SQLite file of its own: plans depend on what the table holds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from datastore.clock import utc_now
from datastore.query import ast
from datastore.storage import keyset, migrate
from datastore.storage.compiler import Compiler, document_columns
from datastore.storage.documents import DocumentStore, listing
from datastore.storage.engine import Database
from datastore.storage.indexes import IndexSpec, ensure_indexes, index_names
from datastore.storage.tables import documents

SPACE = "plans"
SPECS = [IndexSpec("items", ("category",)), IndexSpec("items", ("price",))]
INDEXED = frozenset(spec.path for spec in SPECS)
PK = (documents.c.pk, False)


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """3,000 items (a few with array values) with their indexes."""
    folder: Path = tmp_path_factory.mktemp("sqlite-plans")
    db = Database(f"sqlite:///{folder / 'plans.sqlite3'}")
    migrate.upgrade(db)
    store, now = DocumentStore(), utc_now()
    with db.write() as conn:
        for n in range(3000):
            category: Any = f"cat{n % 30}"
            if n % 500 == 7:
                category = [category, "other"]
            body = {"category": category, "price": (n * 7919) % 1000 / 10}
            store.insert(conn, SPACE, "items", f"d{n:05}", body, now)
    assert ensure_indexes(db, SPECS) == 8
    yield db
    db.dispose()


@pytest.fixture(params=["fresh", "analyzed"])
def db(items: Database, request: pytest.FixtureRequest) -> Database:
    """The items without statistics (as the datastore leaves them), or ANALYZE'd: the
    planner must choose the indexes either way."""
    with items.write() as conn:
        if request.param == "analyzed":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
    return items


def compiler() -> Compiler:
    return Compiler(document_columns(indexed=INDEXED), "sqlite")


def plan(db: Database, query: Any) -> list[str]:
    """EXPLAIN QUERY PLAN of ``query`` as the store sends it (values bound)."""
    with db.read() as conn:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = tuple(compiled.params[name] for name in compiled.positiontup)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).fetchall()
    return [row[3] for row in rows]


def searches(lines: list[str]) -> list[str]:
    """The plan's reads of the documents table; a full scan of it fails the test."""
    assert not any(line.startswith("SCAN documents") for line in lines), lines
    return [line for line in lines if line.startswith("SEARCH documents")]


def name(spec: IndexSpec, kind: str) -> str:
    from datastore.storage.indexes import KINDS

    return index_names([spec])[KINDS.index(kind)]


def test_indexes_are_made_once(items: Database) -> None:
    with items.read() as conn:
        made = {
            row[0]
            for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert set(index_names(SPECS)) <= made
    assert ensure_indexes(items, SPECS) == 8  # idempotent: nothing to do


def test_indexed_equality_reads_both_branches_from_their_indexes(db: Database) -> None:
    where = compiler().filter(ast.Compare(ast.Field(("category",)), "eq", "cat7"))
    reads = searches(plan(db, listing(SPACE, "items", where, [PK], 20, 0)))
    assert len(reads) == 2, reads
    assert name(SPECS[0], "string/pk") in reads[0], reads
    assert name(SPECS[0], "array") in reads[1], reads


def test_range_with_sort_reads_the_sort_index_in_range(db: Database) -> None:
    c = compiler()
    price = ast.Field(("price",))
    where = c.filter(ast.And((ast.Compare(price, "gte", 50), ast.Compare(price, "lt", 51))))
    keys = [*c.sort_keys([ast.SortKey(price, descending=True)]), PK]
    lines = plan(db, listing(SPACE, "items", where, keys, 20, 0))
    reads = searches(lines)
    assert len(reads) == 2, reads
    assert name(SPECS[1], "sort/pk") in reads[0], reads
    assert "<expr>>? AND <expr><?" in reads[0], reads  # bounded by the range
    # the array branch: the field's arrays (or the array rank of its sort index)
    assert name(SPECS[1], "array") in reads[1] or name(SPECS[1], "sort/pk") in reads[1], reads


def test_deep_keyset_pages_are_index_range_scans(db: Database) -> None:
    """Page 500 costs what page 1 costs: each branch of the expanded keyset condition is
    equality on a prefix of the sort index and a range on the next column, read in order
    (no temporary sort inside a branch)."""
    c = compiler()
    order = [*c.sort_columns(ast.SortKey(ast.Field(("price",)))), PK]
    first = searches(plan(db, listing(SPACE, "items", None, order, 21, 0)))
    assert first == [
        f"SEARCH documents USING INDEX {name(SPECS[1], 'sort/pk')} (space=? AND collection=?)"
    ]
    after = keyset.after(order, [1, 50.0, "", 0, 1500], dialect="sqlite")
    lines = plan(db, listing(SPACE, "items", after, order, 21, 0))
    reads = searches(lines)
    assert len(reads) == len(order), lines
    for n, read in enumerate(reads):
        assert name(SPECS[1], "sort/pk") in read, read
        assert read.count("<expr>=?") == n or "pk>?" in read, read
    branch_sorts = [
        line
        for prev, line in itertools.pairwise(lines)
        if prev.startswith("SEARCH") and "TEMP B-TREE" in line
    ]
    assert branch_sorts == [], lines


def test_expanded_pages_return_what_row_values_return(db: Database) -> None:
    """The expanded keyset condition and the row-value one select the same rows."""
    c = compiler()
    order = [*c.sort_columns(ast.SortKey(ast.Field(("price",)), descending=True)), PK]
    values = [1, 50.0, "", 0, 1500]
    found = []
    for condition in (
        keyset.after(order, values, dialect="sqlite"),
        keyset.after(order, values, dialect="postgresql"),
    ):
        with db.read() as conn:
            rows = DocumentStore().page(conn, SPACE, "items", where=condition, keys=order, limit=30)
        found.append([doc.doc_id for doc, _ in rows])
    assert found[0] == found[1] and len(found[0]) == 30


def test_plain_listing_sql_is_unchanged_without_indexes(db: Database) -> None:
    """A field without ``x-datastore-indexes`` compiles as before: no union."""
    where = Compiler(document_columns(), "sqlite").filter(
        ast.Compare(ast.Field(("category",)), "eq", "cat7")
    )
    sql = str(
        listing(SPACE, "items", where, [PK], 20, 0).compile(dialect=sa.dialects.sqlite.dialect())
    )
    assert "UNION" not in sql


def test_a_branch_order_depends_on_its_fields_not_the_cached_statement(db: Database) -> None:
    """A branch leaves out the ORDER BY terms its equalities fix, decided when SQLAlchemy
    compiles the statement, and the compiled form is cached by the statement's shape: the
    fields' paths must be part of that shape, or a page sorted by (category, price) reused the
    SQL of one sorted by (category, category) and dropped price from its branches' order."""
    c = compiler()
    price, category = ast.Field(("price",)), ast.Field(("category",))
    for second in (category, price):
        keys = [ast.SortKey(category), ast.SortKey(second, descending=True)]
        order = [*c.sort_keys(keys), PK]
        with db.read() as conn:
            start = DocumentStore().page(conn, SPACE, "items", where=None, keys=order, limit=40)
        values = start[-1][1]
        found = []
        for dialect in ("sqlite", "postgresql"):
            condition = keyset.after(order, values, dialect=dialect)
            with db.read() as conn:
                rows = DocumentStore().page(
                    conn, SPACE, "items", where=condition, keys=order, limit=3
                )
            found.append([doc.doc_id for doc, _ in rows])
        assert found[0] == found[1], second
