"""A neutral ``Selection`` (``query/selection.py``) compiled for one backend: the WHERE clause
of its filter and access rule, its order, its keyset boundary.

Each part is compiled with the facts of the documents it speaks of: the filter and the sort
with the collection's (defaults as its GET shows them, inheritance, indexes), the access rule
with the facts of the schema the rule sees documents through. Compilers are shared per facts
and backend (``compiler_for``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from datastore.query import ast, cursor
from datastore.query.selection import CollectionFacts, Selection
from datastore.storage import keyset
from datastore.storage.compiler import Compiler, compiler_for
from datastore.storage.keyset import Column
from datastore.storage.tables import documents


def compiler(facts: CollectionFacts, dialect: str) -> Compiler:
    """The shared compiler of documents with ``facts`` on ``dialect``."""
    return compiler_for(
        facts.default_paths, inherits=facts.inherits, dialect=dialect, indexed=facts.indexed
    )


def where(selection: Selection, facts: CollectionFacts, dialect: str) -> ColumnElement[bool] | None:
    """The WHERE clause of the selection's access rule and filter (None: every document)."""
    clauses = []
    if selection.access is not None:
        rule = selection.access
        clauses.append(compiler(rule.facts, dialect).filter(rule.node))
    if selection.filter != ast.TRUE:
        clauses.append(compiler(facts, dialect).filter(selection.filter))
    return sa.and_(*clauses) if clauses else None


def sort_keys(selection: Selection, facts: CollectionFacts, dialect: str) -> list[Column]:
    """The selection's order columns, (expression, descending) pairs (creation order is the
    store's tie-break)."""
    return compiler(facts, dialect).sort_keys(selection.sort)


def page(
    selection: Selection, facts: CollectionFacts, dialect: str
) -> tuple[ColumnElement[bool] | None, list[Column]]:
    """A keyset page's WHERE clause (the selection, and the rows past its boundary) and the
    order to read in (reversed for a page before the boundary), ``pk`` last. Raises
    BadRequest when the boundary's values do not fit the order's columns, before any SQL."""
    keys = [*sort_keys(selection, facts, dialect), (documents.c.pk, False)]
    selected = where(selection, facts, dialect)
    clauses = [selected] if selected is not None else []
    boundary = selection.keyset
    backwards = boundary is not None and boundary.backwards
    if boundary is not None:
        cursor.check([keyset.kind(e.type) for e, _ in keys], boundary.values, boundary.name)
        clauses.append(keyset.after(keys, boundary.values, backwards=backwards, dialect=dialect))
    ordered = [(expression, desc != backwards) for expression, desc in keys]
    return (sa.and_(*clauses) if clauses else None), ordered


def any_of(
    parts: Sequence[tuple[str, ast.Node, CollectionFacts]], dialect: str
) -> ColumnElement[bool]:
    """Documents of several collections: those of each collection that match its node."""
    return sa.or_(
        *[
            sa.and_(documents.c.collection == collection, compiler(facts, dialect).filter(node))
            for collection, node, facts in parts
        ]
    )


def order_by(
    sort: Sequence[ast.SortKey], facts: CollectionFacts, dialect: str
) -> list[ColumnElement[Any]]:
    """ORDER BY expressions of ``sort`` (creation order is the store's tie-break)."""
    return compiler(facts, dialect).order_by(sort)
