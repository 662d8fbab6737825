"""x-datastore-indexes: PostgreSQL expression indexes the compiled queries actually use (and
the indexed forms agreeing with the plain ones on both backends; SQLite's plans are
tests/storage/test_sqlite_plans.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from datastore.clock import utc_now
from datastore.query import ast
from datastore.storage.compiler import Compiler, document_columns
from datastore.storage.documents import DocumentStore
from datastore.storage.engine import Database
from datastore.storage.indexes import IndexSpec, ensure_indexes, index_specs
from datastore.storage.tables import documents


@pytest.fixture
def own_database(database: Database) -> Iterator[Database]:
    """A fresh, migrated PostgreSQL database of the test's own: query plans depend on what
    else the shared table holds (other tests' documents and open transactions), and dropping
    an index needs the table to itself."""
    if not database.is_postgresql:
        pytest.skip("plans and expression indexes are PostgreSQL's")
    import uuid

    from datastore.storage import migrate

    admin = sa.create_engine(database.url, isolation_level="AUTOCOMMIT")
    name = f"datastore_plans_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    own = Database(database.url.rsplit("/", 1)[0] + "/" + name)
    try:
        migrate.upgrade(own)
        yield own
    finally:
        own.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def plan(database: Database, space: str | None, node: ast.Node) -> str:
    compiler = Compiler(document_columns(), database.dialect)
    query = sa.select(documents.c.doc_id).where(compiler.filter(node))
    if space is not None:
        query = query.where(documents.c.space == space, documents.c.collection == "ev")
    with database.write() as conn:  # a transaction, for SET LOCAL (reads are autocommit)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).fetchall()
    return "\n".join(r[0] for r in rows)


def test_specs_from_a_blueprint() -> None:
    document: dict[str, Any] = {
        "paths": {
            "/ev": {"x-datastore-indexes": ["cost", "venue.city"]},
            "/{collection}": {"x-datastore-indexes": ["tag"]},
        }
    }
    assert index_specs(document) == [
        IndexSpec("ev", ("cost",)),
        IndexSpec("ev", ("venue", "city")),
        IndexSpec(None, ("tag",)),
    ]


def test_indexed_queries_use_the_indexes(own_database: Database, space: str) -> None:
    database = own_database
    if not database.is_postgresql:
        pytest.skip("expression indexes are a PostgreSQL feature; SQLite needs none here")
    assert ensure_indexes(database, [IndexSpec("ev", ("cost",))]) == 4
    assert ensure_indexes(database, [IndexSpec("ev", ("cost",))]) == 4  # idempotent
    with database.write() as conn:
        store, now = DocumentStore(), utc_now()
        for n in range(500):
            store.insert(conn, space, "ev", f"d{n}", {"cost": n % 50, "name": f"n{n}"}, now)
        conn.exec_driver_sql("ANALYZE documents")
    ranged = plan(database, space, ast.Compare(ast.Field(("cost",)), "gt", 45, elementwise=False))
    assert "ix_documents_x_" in ranged, ranged
    # Equality needs no declared index: it is containment, which the body's GIN index serves.
    equal = plan(database, None, ast.Compare(ast.Field(("name",)), "eq", "n5"))
    assert "ix_documents_body_gin" in equal, equal


@pytest.mark.pgbouncer
def test_equality_on_indexed_fields_agrees_with_containment(database: Database, space: str) -> None:
    """On fields with an expression index, equality compiles to that expression (plus the
    array branch) instead of GIN containment: the same documents must match, as the
    reference evaluator says. (On SQLite, which has no containment, the plain form is
    ``EXISTS`` over the elements.)"""
    from datastore.query.evaluate import matches

    bodies: dict[str, Any] = {
        "s": {"f": "v", "g": {"h": "v"}},
        "n": {"f": 5, "g": {"h": 5}},
        "n2": {"f": 5.0},
        "big": {"f": 12345678901234567890},
        "str5": {"f": "5"},
        "arr": {"f": ["x", "v"], "g": {"h": ["v"]}},
        "narr": {"f": [5, 1]},
        "obj": {"f": {"v": 1}},
        "null": {"f": None},
        "bool": {"f": True},
        "empty": {"f": ""},
        "nested": {"f": [["v"]]},
        "missing": {},
    }
    with database.write() as conn:
        store, now = DocumentStore(), utc_now()
        for doc_id, body in bodies.items():
            store.insert(conn, space, "eq", doc_id, body, now)
    dialect = database.dialect
    values: list[Any] = ["v", 5, 5.0, "5", "", "x", 1, True]
    if database.is_postgresql:
        values.append(12345678901234567890)  # SQLite binds 64-bit integers at most (a 400)
    for path in (("f",), ("g", "h")):
        plain = Compiler(document_columns(), dialect)
        indexed = Compiler(document_columns(indexed=frozenset({path})), dialect)
        for value in values:
            node = ast.Compare(ast.Field(path), "eq", value)
            expected = {d for d, body in bodies.items() if matches(node, body, {})}
            for compiler in (plain, indexed):
                query = sa.select(documents.c.doc_id).where(
                    documents.c.space == space, compiler.filter(node)
                )
                with database.read() as conn:
                    found = {row[0] for row in conn.execute(query)}
                assert found == expected, (path, value, compiler is indexed)


def test_indexed_equality_listings_are_a_union_in_index_order(
    own_database: Database, space: str
) -> None:
    """A listing filtered by equality on an indexed field reads each branch's index in creation
    order (Merge Append of two limited index scans) instead of filtering the collection or
    sorting every match; and it returns what the plain (containment) form returns."""
    database = own_database
    if not database.is_postgresql:
        pytest.skip("the indexed form is PostgreSQL's")
    spec = IndexSpec("un", ("cat",))
    ensure_indexes(database, [spec])
    store, now = DocumentStore(), utc_now()
    with database.write() as conn:
        for n in range(600):
            cat: Any = f"c{n % 6}"
            if n % 50 == 7:
                cat = [f"c{n % 6}", "other"]  # arrays holding the value match too
            store.insert(conn, space, "un", f"d{n:03}", {"cat": cat, "r": (n * 37) % 101}, now)
        conn.exec_driver_sql("ANALYZE documents")
    node = ast.Compare(ast.Field(("cat",)), "eq", "c1")
    plain = Compiler(document_columns(), "postgresql")
    indexed = Compiler(document_columns(indexed=frozenset({("cat",)})), "postgresql")
    rank = ast.SortKey(ast.Field(("r",)), descending=True)
    for sort in ((), (rank,)):
        for limit, offset in ((20, 0), (5, 3), (200, 0), (7, 95)):
            found = []
            for compiler in (plain, indexed):
                with database.read() as conn:
                    docs = store.find(
                        conn,
                        space,
                        "un",
                        where=compiler.filter(node),
                        keys=compiler.sort_keys(sort),
                        limit=limit,
                        offset=offset,
                    )
                found.append([d.doc_id for d in docs])
            assert found[0] == found[1], (sort, limit, offset)
            assert found[1], (sort, limit, offset)
        # keyset pages take the same path
        keys = [*indexed.sort_columns(sort[0]), (documents.c.pk, False)] if sort else []
        if keys:
            with database.read() as conn:
                pages = [
                    store.page(conn, space, "un", where=c.filter(node), keys=keys, limit=9)
                    for c in (plain, indexed)
                ]
            assert [d.doc_id for d, _ in pages[0]] == [d.doc_id for d, _ in pages[1]]
            assert [v for _, v in pages[0]] == [v for _, v in pages[1]]

    with database.write() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        query = _listing_sql(conn, space, indexed.filter(node))
        lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + query[0], query[1]).fetchall()]
    text = "\n".join(lines)
    assert "Merge Append" in text, text
    assert _name_of(spec, "string/pk") in text, text
    assert _name_of(spec, "array") in text, text


def _listing_sql(conn: Any, space: str, where: Any) -> tuple[str, dict[str, Any]]:
    from datastore.storage.documents import listing

    query = listing(space, "un", where, [(documents.c.pk, False)], 20, 0)
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


def _name_of(spec: IndexSpec, kind: str) -> str:
    from datastore.storage.indexes import _name

    return _name(spec, kind)


def test_legacy_indexes_are_replaced(own_database: Database) -> None:
    """Indexes of earlier versions (``collection`` as a column of a partial index, which could
    not bound the scan) are dropped when the new ones are made; while another transaction
    holds the table, the drop gives up after a moment and the index stays for a later start.
    On a database of its own: the drop needs the table to itself."""
    from datastore.storage.indexes import legacy_index_names

    own = own_database
    spec = IndexSpec("legacy", ("x",))
    names = legacy_index_names([spec])

    def legacy_left() -> list[Any]:
        with own.read() as conn:
            return list(
                conn.exec_driver_sql(
                    "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%(n)s)",
                    {"n": names},
                ).fetchall()
            )

    with own.write() as conn:
        for legacy in names:
            conn.exec_driver_sql(f'CREATE INDEX "{legacy}" ON documents (space, collection)')
    with own.engine.connect() as busy:  # a transaction that read the table, left open
        # Another program's session: not bound by the datastore's idle-in-transaction timeout.
        busy.exec_driver_sql("SET idle_in_transaction_session_timeout = 0")
        busy.exec_driver_sql("SELECT count(*) FROM documents")
        ensure_indexes(own, [spec])
        assert len(legacy_left()) == len(names)
        busy.rollback()
    ensure_indexes(own, [spec])
    assert legacy_left() == []


def test_index_names_are_the_names_of_the_indexes_made() -> None:
    """``ensure_indexes`` decides from the names alone whether anything is missing."""
    from datastore.storage.indexes import index_names, index_statements

    specs = [IndexSpec("ev", ("cost",)), IndexSpec(None, ("venue", "city"))]
    assert index_names(specs) == [index.name for index in index_statements(specs)]
    assert len(set(index_names(specs))) == 8


def test_listings_use_the_indexes_in_a_generic_plan(own_database: Database, space: str) -> None:
    """The synchronous pool's connections keep generic plans for prepared statements (planning
    a listing against every expression index cost ~10x running it). A generic plan knows no
    parameter, so the listing writes the collection, the JSON keys and the type names into
    its SQL; with them it still reads the field's indexes."""
    database = own_database
    if not database.is_postgresql:
        pytest.skip("plans are PostgreSQL's")
    spec = IndexSpec("gen", ("cat",))
    ensure_indexes(database, [spec])
    with database.write() as conn:
        store, now = DocumentStore(), utc_now()
        for n in range(300):
            store.insert(conn, space, "gen", f"d{n}", {"cat": f"c{n % 3}"}, now)
        conn.exec_driver_sql("ANALYZE documents")
    with database.read() as conn:
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_generic_plan"
    from datastore.storage.documents import listing

    indexed = Compiler(document_columns(indexed=frozenset({("cat",)})), "postgresql")
    where = indexed.filter(ast.Compare(ast.Field(("cat",)), "eq", "c1"))
    equal = _generic_plan(database, listing(space, "gen", where, [(documents.c.pk, False)], 20, 0))
    assert _name_of(spec, "string/pk") in equal, equal
    assert _name_of(spec, "array") in equal, equal
    # a keyset page of a listing sorted by the field: its sort index, no sort of the collection
    from datastore.storage import keyset

    keys = [*indexed.sort_columns(ast.SortKey(ast.Field(("cat",)))), (documents.c.pk, False)]
    after = keyset.after(keys, [2, 0, "c1", 0, 0], backwards=False)
    page = _generic_plan(database, listing(space, "gen", after, keys, 21, 0))
    assert _name_of(spec, "sort/pk") in page, page
    assert "Sort" not in page, page


def _generic_plan(database: Database, query: Any) -> str:
    """EXPLAIN of ``query`` prepared and planned generically (as the pool's connections do)."""
    with database.write() as conn:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        names = list(compiled.params)
        sql = str(compiled)
        for n, name in enumerate(names, 1):  # pyformat placeholders as $n
            sql = sql.replace(f"%({name})s", f"${n}")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql(f"PREPARE listing AS {sql}")
        try:
            args = ", ".join(_sql_literal(compiled.params[name]) for name in names)
            lines = conn.exec_driver_sql(f"EXPLAIN EXECUTE listing({args})").fetchall()
        finally:
            conn.exec_driver_sql("DEALLOCATE listing")
    plan = "\n".join(row[0] for row in lines)
    assert "$" in plan, plan  # the generic plan: parameters left as they are
    return plan


def _sql_literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


@pytest.mark.pgbouncer
def test_ranges_on_indexed_fields_agree_with_the_reference(database: Database, space: str) -> None:
    """Ranges on an indexed field are an exclusive OR too (the typed view, or an array with an
    element in range), run as a union in listings: the same documents as the reference
    evaluator, in the same order, as with the plain compiler."""
    from datastore.query.evaluate import matches

    bodies: dict[str, Any] = {
        "n1": {"f": 1},
        "n5": {"f": 5},
        "n7": {"f": 7.5},
        "big": {"f": 12345678901234567890},
        "sa": {"f": "a"},
        "sm": {"f": "m"},
        "arr": {"f": [1, 9]},
        "sarr": {"f": ["b", "z"]},
        "mixed": {"f": ["q", 3]},
        "obj": {"f": {"x": 1}},
        "null": {"f": None},
        "bool": {"f": True},
        "missing": {},
    }
    with database.write() as conn:
        store, now = DocumentStore(), utc_now()
        for doc_id, body in bodies.items():
            store.insert(conn, space, "rg", doc_id, body, now)
    plain = Compiler(document_columns(), database.dialect)
    indexed = Compiler(document_columns(indexed=frozenset({("f",)})), database.dialect)
    for op in ("gt", "gte", "lt", "lte"):
        for value in (5, 0, 8, "m", "c", "zz"):
            node = ast.Compare(ast.Field(("f",)), op, value)
            expected = {d for d, body in bodies.items() if matches(node, body, {})}
            found = []
            for compiler in (plain, indexed):
                with database.read() as conn:
                    docs = store.find(
                        conn, space, "rg", where=compiler.filter(node), limit=50, offset=0
                    )
                found.append([d.doc_id for d in docs])
            assert set(found[1]) == expected, (op, value)
            assert found[0] == found[1], (op, value)
    where = indexed.filter(ast.Compare(ast.Field(("f",)), "gt", 5))
    assert len(_union_branches(where)) == 2


def _union_branches(where: Any) -> list[Any]:
    from datastore.storage.union import branches

    return branches(where) or []
