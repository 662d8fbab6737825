"""The document store: rows of ``documents`` in and out, nothing else.

Every method takes the connection of the caller's transaction, so the service decides the
transaction boundaries (one per request). The store never interprets bodies beyond storing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastore.storage.dialects import DIALECTS, dialect_of
from datastore.storage.tables import documents as t
from datastore.storage.union import branches
from datastore.types import Document

COLUMNS = (
    t.c.pk,
    t.c.collection,
    t.c.doc_id,
    t.c.body,
    t.c.created_at,
    t.c.updated_at,
    t.c.version,
    t.c.extends,
)


@dataclass(frozen=True)
class StoredDocument:
    """One stored document with its bookkeeping."""

    pk: int
    collection: str
    doc_id: str
    body: Document
    created_at: datetime
    updated_at: datetime
    version: int
    extends: str | None

    @property
    def path(self) -> str:
        """The document's path: ``/users/u1/events/e1``."""
        return f"/{self.collection}/{self.doc_id}"


BY_PATH = sa.select(*COLUMNS).where(
    t.c.space == sa.bindparam("space"),
    t.c.collection == sa.bindparam("collection"),
    t.c.doc_id == sa.bindparam("doc_id"),
)
"""One document by its place, built once: building the comparisons per call cost about 7 %
of a GET's CPU (SQLAlchemy's cache then compiles it once too)."""


WIDTH = len(COLUMNS)
"""The columns of a document row; a listing's order values follow them."""


def listing(
    space: str,
    collection: str,
    where: sa.ColumnElement[bool] | None,
    keys: Sequence[tuple[sa.ColumnElement[Any], bool]],
    limit: int,
    offset: int,
) -> sa.Select[Any]:
    """The documents' columns then each key's value, of one collection's documents matching
    ``where``, ordered by ``keys`` and limited; where ``where`` holds an exclusive OR, as a
    UNION ALL of one ordered, limited SELECT per branch (``storage/union.py``)."""
    labelled = [expr.label(f"k{i}") for i, (expr, _) in enumerate(keys)]
    # The collection is written into the SQL: the indexes of x-datastore-indexes fields are
    # partial indexes of their collection, which a generic plan can use only if it knows it.
    in_collection = t.c.collection == sa.literal(collection, literal_execute=True)
    scope = (t.c.space == space, in_collection)
    split = branches(where)
    if split is None:
        query = sa.select(*COLUMNS, *labelled).where(*scope)
        if where is not None:
            query = query.where(where)
        return query.order_by(*_directed(keys)).limit(limit).offset(offset or None)
    union = sa.union_all(
        *[
            sa.select(*COLUMNS, *labelled)
            .where(*scope, branch)
            .order_by(*_directed(keys))
            .limit(limit + offset)
            for branch in split
        ]
    ).subquery()
    # Plain named columns over the union: SQLAlchemy's own ``union.c`` proxies cost 7 % of a
    # listing's CPU to set up, per request.
    outer = [
        (sa.column(label.name, label.type), desc)
        for label, (_, desc) in zip(labelled, keys, strict=True)
    ]
    return (
        sa.select(*[sa.column(c.name, c.type) for c in COLUMNS], *[c for c, _ in outer])
        .select_from(union)
        .order_by(*_directed(outer))
        .limit(limit)
        .offset(offset or None)
    )


def _directed(keys: Sequence[tuple[sa.ColumnElement[Any], bool]]) -> list[Any]:
    return [expr.desc() if desc else expr.asc() for expr, desc in keys]


def document_from_row(row: Sequence[Any]) -> StoredDocument:
    """A document from a row of ``COLUMNS`` (and maybe more), from SQLAlchemy or straight
    from the driver: the one row mapping of both paths (datetimes as aware UTC)."""
    pk, collection, doc_id, body, created, updated, version, extends = row[:WIDTH]
    return StoredDocument(
        pk=pk,
        collection=collection,
        doc_id=doc_id,
        body=body,
        created_at=_utc(created),
        updated_at=_utc(updated),
        version=version,
        extends=extends,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Writes are built once with bound parameters, as BY_PATH is: building the statement per call
# (values, comparisons, cache key) was a fifth of a PATCH's CPU.
INSERTS = {
    dialect.name: dialect.insert(t)
    .on_conflict_do_nothing(index_elements=["space", "collection", "doc_id"])
    .returning(*COLUMNS)
    for dialect in DIALECTS
}
UPDATE = (
    sa.update(t)
    .where(
        t.c.pk == sa.bindparam("match_pk"),
        t.c.space == sa.bindparam("match_space"),
        t.c.version == sa.bindparam("match_version"),
    )
    .values(
        body=sa.bindparam("new_body", type_=t.c.body.type),
        updated_at=sa.bindparam("new_updated_at", type_=t.c.updated_at.type),
        version=sa.bindparam("new_version", type_=t.c.version.type),
        extends=sa.bindparam("new_extends", type_=t.c.extends.type),
    )
    .returning(*COLUMNS)
)
INSERT_KEYS = (
    "space",
    "collection",
    "doc_id",
    "body",
    "created_at",
    "updated_at",
    "version",
    "extends",
)
"""The parameters of ``INSERTS`` (what ``insert_params`` fills in)."""


def insert_params(
    space: str, collection: str, doc_id: str, body: Any, now: datetime, extends: str | None
) -> dict[str, Any]:
    """The parameters of ``INSERTS`` for a new document (version 1)."""
    values = (space, collection, doc_id, body, now, now, 1, extends)
    return dict(zip(INSERT_KEYS, values, strict=True))


def update_params(
    space: str, current: StoredDocument, body: Any, now: datetime, extends: str | None
) -> dict[str, Any]:
    """The parameters of ``UPDATE``: ``current``'s row, if still at its version, gets
    ``body`` and the next version."""
    return {
        "match_pk": current.pk,
        "match_space": space,
        "match_version": current.version,
        "new_body": body,
        "new_updated_at": now,
        "new_version": current.version + 1,
        "new_extends": extends,
    }


class DocumentStore:
    """Reads and writes rows of the ``documents`` table for one space at a time."""

    def get(
        self, conn: Connection, space: str, collection: str, doc_id: str, *, lock: bool = False
    ) -> StoredDocument | None:
        """The document, or None. ``lock`` takes a row lock (PostgreSQL) until commit."""
        query = dialect_of(conn).for_update(BY_PATH) if lock else BY_PATH
        row = conn.execute(
            query, {"space": space, "collection": collection, "doc_id": doc_id}
        ).first()
        return document_from_row(row) if row is not None else None

    def get_by_pk(self, conn: Connection, space: str, pk: int) -> StoredDocument | None:
        """The document with this surrogate key, or None."""
        row = conn.execute(sa.select(*COLUMNS).where(t.c.pk == pk, t.c.space == space)).first()
        return document_from_row(row) if row is not None else None

    def exists(self, conn: Connection, space: str, collection: str, doc_id: str) -> bool:
        """Whether the document exists."""
        query = sa.select(t.c.pk).where(
            t.c.space == space, t.c.collection == collection, t.c.doc_id == doc_id
        )
        return conn.execute(query).first() is not None

    def root_collections(self, conn: Connection, space: str, limit: int) -> list[str]:
        """The names of the space's collections that hold documents at the root (not under a
        parent document), in code point order, at most ``limit``. It reads the space's
        collection column through its unique index, every document once: an operator's
        question, not a request's."""
        query = (
            sa.select(t.c.collection)
            .where(t.c.space == space, t.c.collection.not_like("%/%"))
            .group_by(t.c.collection)
            .order_by(dialect_of(conn).collate(t.c.collection))
            .limit(limit)
        )
        return [str(name) for name in conn.execute(query).scalars()]

    def holds_any(self, conn: Connection, space: str, collection: str) -> bool:
        """Whether the collection holds at least one document."""
        params = {"space": space, "collection": collection}
        return bool(conn.execute(HOLDS_ANY, params).scalar_one())

    def insert(
        self,
        conn: Connection,
        space: str,
        collection: str,
        doc_id: str,
        body: Document,
        now: datetime,
        *,
        extends: str | None = None,
    ) -> StoredDocument | None:
        """Insert a new document; None (and nothing written) when the id is already taken."""
        row = conn.execute(
            INSERTS[conn.dialect.name],
            insert_params(space, collection, doc_id, body, now, extends),
        ).first()
        return document_from_row(row) if row is not None else None

    def update(
        self,
        conn: Connection,
        space: str,
        current: StoredDocument,
        body: Document,
        now: datetime,
        *,
        extends: str | None,
    ) -> StoredDocument | None:
        """Replace the body of ``current``; None when it changed since it was read."""
        row = conn.execute(UPDATE, update_params(space, current, body, now, extends)).first()
        return document_from_row(row) if row is not None else None

    def delete(self, conn: Connection, space: str, doc: StoredDocument) -> int:
        """Delete a document and every document in its sub-collections; the number deleted."""
        own = conn.execute(sa.delete(t).where(t.c.pk == doc.pk, t.c.space == space)).rowcount
        prefix = f"{doc.collection}/{doc.doc_id}/"
        nested = conn.execute(
            sa.delete(t).where(
                t.c.space == space, t.c.collection.startswith(prefix, autoescape=True)
            )
        ).rowcount
        return int(own or 0) + int(nested or 0)

    def find(
        self,
        conn: Connection,
        space: str,
        collection: str,
        *,
        where: sa.ColumnElement[bool] | None = None,
        keys: Sequence[tuple[sa.ColumnElement[Any], bool]] = (),
        limit: int | None = None,
        offset: int = 0,
        lock: bool = False,
    ) -> list[StoredDocument]:
        """Documents of one collection, filtered and ordered by ``keys`` ((expression,
        descending) pairs; creation order breaks ties); ``lock`` takes row locks (PostgreSQL)
        until commit."""
        if not lock and limit is not None:
            ordered = listing(space, collection, where, [*keys, (t.c.pk, False)], limit, offset)
            return [document_from_row(row) for row in conn.execute(ordered)]
        query = sa.select(*COLUMNS).where(t.c.space == space, t.c.collection == collection)
        if where is not None:
            query = query.where(where)
        query = query.order_by(*_directed(keys), t.c.pk)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        if lock:
            query = dialect_of(conn).for_update(query, of=t)
        return [document_from_row(row) for row in conn.execute(query)]

    def find_in(
        self,
        conn: Connection,
        space: str,
        collections: Sequence[str],
        *,
        where: sa.ColumnElement[bool] | None,
        order_by: Sequence[sa.ColumnElement[Any]],
        limit: int,
    ) -> list[StoredDocument]:
        """Documents of several collections, ordered (creation order breaks ties)."""
        query = sa.select(*COLUMNS).where(t.c.space == space, t.c.collection.in_(collections))
        if where is not None:
            query = query.where(where)
        query = query.order_by(*order_by, t.c.pk).limit(limit)
        return [document_from_row(row) for row in conn.execute(query)]

    def page(
        self,
        conn: Connection,
        space: str,
        collection: str,
        *,
        where: sa.ColumnElement[bool] | None,
        keys: Sequence[tuple[sa.ColumnElement[Any], bool]],
        limit: int,
    ) -> list[tuple[StoredDocument, list[Any]]]:
        """Documents ordered by ``keys`` (then creation order), each with its key values."""
        query = listing(space, collection, where, keys, limit, 0)
        return [(document_from_row(row), list(row[WIDTH:])) for row in conn.execute(query)]

    def count(
        self,
        conn: Connection,
        space: str,
        collection: str,
        *,
        where: sa.ColumnElement[bool] | None = None,
    ) -> int:
        """How many documents of one collection match ``where``."""
        return int(conn.execute(counting(space, collection, where)).scalar_one())


def counting(space: str, collection: str, where: sa.ColumnElement[bool] | None) -> sa.Select[Any]:
    """How many documents of one collection match ``where``."""
    query = sa.select(sa.func.count()).select_from(t)
    query = query.where(t.c.space == space, t.c.collection == collection)
    return query.where(where) if where is not None else query


HOLDS_ANY = sa.select(
    sa.exists().where(
        t.c.space == sa.bindparam("space"), t.c.collection == sa.bindparam("collection")
    )
)
"""Whether a collection holds a document (built once)."""
