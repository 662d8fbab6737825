"""Reading every stored document in batches, in constant memory (``datastore check-data``).

Keyset reads by ``pk``: each batch is one short read (``pk > last ORDER BY pk LIMIT n``), so
nothing is held open between batches and page 1000 costs what page 1 costs. Each batch comes
with the ancestor bodies of its documents that extend others (one closure-table query), so a
document can be seen as GET shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from datastore.storage.engine import Database
from datastore.storage.lineage import LineageStore
from datastore.storage.tables import documents as t

BATCH = 1000


@dataclass(frozen=True)
class ScannedDocument:
    """One stored document and the bodies it inherits from (nearest first)."""

    pk: int
    space: str
    collection: str
    doc_id: str
    body: dict[str, Any]
    extends: str | None
    ancestors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> str:
        """``/users/u1/notes/n1``."""
        return f"/{self.collection}/{self.doc_id}"


def _scope(space: str | None, collection: str | None) -> list[sa.ColumnElement[bool]]:
    where = []
    if space is not None:
        where.append(t.c.space == space)
    if collection is not None:
        where.append(t.c.collection == collection)
    return where


def count_documents(db: Database, *, space: str | None, collection: str | None = None) -> int:
    """How many documents a scan with the same arguments reads."""
    with db.read() as conn:
        query = sa.select(sa.func.count()).select_from(t).where(*_scope(space, collection))
        return int(conn.execute(query).scalar_one())


def scan_documents(
    db: Database,
    *,
    space: str | None,
    collection: str | None = None,
    batch: int = BATCH,
    inherited: bool = True,
) -> Iterator[list[ScannedDocument]]:
    """Every document (of a space, of one collection path) in creation order, in batches;
    with the bodies each inherits from unless ``inherited`` is False."""
    lineage = LineageStore(space)
    last = 0
    columns = (t.c.pk, t.c.space, t.c.collection, t.c.doc_id, t.c.body, t.c.extends)
    while True:
        with db.read() as conn:
            rows = conn.execute(
                sa.select(*columns)
                .where(t.c.pk > last, *_scope(space, collection))
                .order_by(t.c.pk)
                .limit(batch)
            ).all()
            if not rows:
                return
            extending = [r.pk for r in rows if r.extends] if inherited else []
            ancestors = lineage.ancestor_bodies(conn, extending)
        yield [
            ScannedDocument(
                r.pk, r.space, r.collection, r.doc_id, r.body, r.extends, ancestors.get(r.pk, [])
            )
            for r in rows
        ]
        last = rows[-1].pk
