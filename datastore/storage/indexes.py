"""Expression indexes for ``x-datastore-indexes`` (PostgreSQL and SQLite).

For each declared field of a collection, four B-tree indexes over exactly the expressions the
query compiler emits, each ending in creation order (``pk``): the field as a number and as a
string (equality and typed comparisons), the documents where it is an array (equality's other
branch, see ``storage/union.py``), and its sort columns (sorted listings and keyset pages).
They are led by ``space``, and are partial indexes of the collection when its name is literal
(else ``collection`` follows ``space``). Equality on any other field uses the GIN index on the
body (containment).

SQLite gets the same indexes over its own expressions of the same views (the ``collection``
column kept in a collection's partial indexes, and the array index over the field's type, for
its planner: see ``_index``), made in a write transaction that workers starting together take
in turn.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from datastore.query import ast
from datastore.storage.compiler import Compiler, document_columns
from datastore.storage.dialects.base import Dialect
from datastore.storage.engine import Database
from datastore.storage.errors import translate_errors
from datastore.storage.tables import documents

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexSpec:
    """One indexed field: the literal collection name (None: every collection) and the path."""

    collection: str | None
    path: tuple[str, ...]


def index_specs(document: dict[str, object]) -> list[IndexSpec]:
    """Every ``x-datastore-indexes`` field of a blueprint's collection paths."""
    specs = []
    paths = document.get("paths")
    for path, item in paths.items() if isinstance(paths, dict) else []:
        fields = item.get("x-datastore-indexes") if isinstance(item, dict) else None
        if not isinstance(fields, list):
            continue
        segments = path.strip("/").split("/")
        literal = len(segments) == 1 and not segments[0].startswith("{")
        for field in fields:
            if isinstance(field, str) and field:
                specs.append(IndexSpec(segments[0] if literal else None, tuple(field.split("."))))
    return specs


def _name(spec: IndexSpec, kind: str) -> str:
    digest = hashlib.sha1(f"{spec.collection}|{'.'.join(spec.path)}|{kind}".encode()).hexdigest()
    return f"ix_documents_x_{digest[:16]}"


LEGACY_KINDS = ("number", "string", "sort")
"""Kinds of index earlier versions created, with ``collection`` as a column in partial indexes:
PostgreSQL drops a qual the index predicate implies, so the column after it could not bound
the scan (it read the whole space). ``ensure_indexes`` drops them."""


def index_statements(specs: Iterable[IndexSpec], dialect: str = "postgresql") -> list[sa.Index]:
    """The Index objects for the specs, over ``dialect``'s expressions. They are detached from
    the table's metadata again, so Alembic's view of the schema stays the migrations' own.

    A spec with a literal collection gets partial indexes (``WHERE collection = '...'``);
    on PostgreSQL without a ``collection`` column (see ``LEGACY_KINDS``), on SQLite with it
    (see ``_index``). One for every collection has the column after ``space``. Either way
    each index ends with ``pk`` (creation order), so equality with a listing's ``LIMIT``
    reads only the rows it returns."""
    compiler = Compiler(document_columns(), dialect)
    out = []
    for spec in specs:
        value = compiler.value(ast.Field(spec.path))
        for kind, expression in compiler.typed_views(value).items():
            out.append(_index(spec, compiler.d, f"{kind}/pk", sa.Grouping(expression)))
        # Documents where the field is an array, in creation order: the other branch of
        # equality (an array holding the value), usually few or none.
        is_array = compiler.is_array(value)
        typed = [sa.Grouping(compiler.d.raw_type(value))] if compiler.d.index_array_by_type else []
        out.append(_index(spec, compiler.d, "array", *typed, predicate=is_array))
        # The order of a sort on the field: its sort columns, then creation order, so keyset
        # pages are an index range scan.
        sort_columns = [
            column for column, _ in compiler.sort_columns(ast.SortKey(ast.Field(spec.path)))
        ]
        out.append(_index(spec, compiler.d, "sort/pk", *[sa.Grouping(c) for c in sort_columns]))
    for made in out:
        documents.indexes.discard(made)
    return out


def _index(
    spec: IndexSpec, dialect: Dialect, kind: str, *columns: Any, predicate: Any = None
) -> sa.Index:
    """``(space[, collection], *columns, pk)``, partial to the spec's literal collection and
    to ``predicate``; a collection's partial index keeps the ``collection`` column where
    the backend's planner needs it (``Dialect.index_keeps_collection``)."""
    scope = [documents.c.space]
    conditions = [predicate] if predicate is not None else []
    if spec.collection:
        conditions.insert(0, documents.c.collection == spec.collection)
    if not spec.collection or dialect.index_keeps_collection:
        scope.append(documents.c.collection)
    where = sa.and_(*conditions) if conditions else None
    return sa.Index(
        _name(spec, kind),
        *scope,
        *columns,
        documents.c.pk,
        postgresql_where=where,
        sqlite_where=where,
    )


KINDS = ("number/pk", "string/pk", "array", "sort/pk")
"""The indexes of each field, in the order ``index_statements`` makes them."""


def index_names(specs: Iterable[IndexSpec]) -> list[str]:
    """The names of the indexes ``index_statements`` makes for these specs."""
    return [_name(spec, kind) for spec in specs for kind in KINDS]


def legacy_index_names(specs: Iterable[IndexSpec]) -> list[str]:
    """Names of the indexes of ``LEGACY_KINDS`` for these specs."""
    return [_name(spec, kind) for spec in specs for kind in LEGACY_KINDS]


def ensure_indexes(db: Database, specs: Iterable[IndexSpec]) -> int:
    """Create the missing indexes and drop legacy ones; how many are declared. One catalogue
    query finds what exists, so a restart with every index in place issues no DDL and builds
    no index definitions (a statement per index, and building them, were a quarter of a
    second of a 50-collection blueprint's start-up). Workers starting together take turns
    (a transaction lock; SQLite's one writer), and the later ones find every index made."""
    dialect = db.backend
    specs = list(specs)
    for spec in specs:
        if not dialect.indexable(spec.path):
            log.warning(
                "x-datastore-indexes: %r cannot be indexed on %s", ".".join(spec.path), db.dialect
            )
    specs = [spec for spec in specs if dialect.indexable(spec.path)]
    names = index_names(specs)
    legacy = legacy_index_names(specs)
    with translate_errors(), db.read() as conn:
        existing = dialect.existing_indexes(conn, names + legacy)
    if existing.issuperset(names) and existing.isdisjoint(legacy):
        return len(names)
    with translate_errors(), db.schema_change() as conn:
        dialect.lock_transaction(conn, ENSURE_LOCK)
        existing = dialect.existing_indexes(conn, names + legacy)
        for name in legacy:
            if name in existing and not dialect.drop_index_unless_busy(
                conn, name, LEGACY_DROP_WAIT_MS
            ):
                log.warning("index %s of an earlier version left in place: busy", name)
        for index in index_statements(specs, dialect.name):
            if index.name not in existing:
                conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
    return len(names)


ENSURE_LOCK = 7413002
"""The transaction lock ``ensure_indexes`` takes (as every earlier version did)."""
LEGACY_DROP_WAIT_MS = 2000
"""How long dropping a legacy index waits for its lock (which any open transaction on the
documents table holds off) before leaving the index for a later start: the drop needs the
table to itself, and an unused index does no harm until the next start."""
