"""Expression indexes for ``x-datastore-indexes`` (PostgreSQL).

For each declared field of a collection, three B-tree indexes over exactly the expressions the
query compiler emits — the field as a number and as a string (typed comparisons), and its sort
columns followed by creation order (sorted listings and keyset pages) — led by
``(space, collection)`` and limited to that collection when its name is literal. Equality on any
field also uses the GIN index on the body (containment). SQLite gets no extra index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from datastore.query import ast
from datastore.query.sql import Compiler, document_columns
from datastore.storage.engine import Database
from datastore.storage.errors import translate_errors
from datastore.storage.tables import documents


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


def index_statements(specs: Iterable[IndexSpec]) -> list[sa.Index]:
    """The Index objects for the specs (PostgreSQL expressions). They are detached from the
    table's metadata again, so Alembic's view of the schema stays the migrations' own."""
    compiler = Compiler(document_columns(), "postgresql")
    out = []
    for spec in specs:
        value = compiler.value(ast.Field(spec.path))
        for kind, expression in compiler.typed_views(value).items():
            where = documents.c.collection == spec.collection if spec.collection else None
            out.append(
                sa.Index(
                    _name(spec, kind),
                    documents.c.space,
                    documents.c.collection,
                    sa.Grouping(expression),
                    postgresql_where=where,
                )
            )
        # The order of a sort on the field: its sort columns, then creation order, so keyset
        # pages are an index range scan.
        sort_columns = [
            column for column, _ in compiler.sort_columns(ast.SortKey(ast.Field(spec.path)))
        ]
        out.append(
            sa.Index(
                _name(spec, "sort"),
                documents.c.space,
                documents.c.collection,
                *[sa.Grouping(c) for c in sort_columns],
                documents.c.pk,
                postgresql_where=documents.c.collection == spec.collection
                if spec.collection
                else None,
            )
        )
    for index in out:
        documents.indexes.discard(index)
    return out


def ensure_indexes(db: Database, specs: Iterable[IndexSpec]) -> int:
    """Create the missing indexes (PostgreSQL only); how many were declared."""
    if not db.is_postgresql:
        return 0
    indexes = index_statements(specs)
    with translate_errors(), db.engine.begin() as conn:
        for index in indexes:
            conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
    return len(indexes)
