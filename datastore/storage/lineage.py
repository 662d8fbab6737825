"""The ``$extends`` lineage: a closure table of (ancestor, descendant, depth) rows.

Every document that extends another has one row per ancestor (depth 1 = the document it
extends directly), so "all ancestors", "direct children" and "all descendants" are one indexed
query each. Re-parenting a document moves its whole subtree: the rows linking the subtree to its
old ancestors are deleted, and every (new ancestor, subtree member) pair is inserted with the
summed depth. Rows go away with their documents (foreign keys cascade).

Every row carries the space of its documents, and every statement filters by it (with the
documents it joins): under Citus, distributed by ``space``, each one runs on one shard
(``docs/deploy.md``; ``tests/support/citus_audit.py`` checks).

Lineage changes of a space are serialised (a transaction-level advisory lock on PostgreSQL; the
single writer on SQLite), so two concurrent re-parentings can never build a cycle together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastore.storage.dialects import dialect_of
from datastore.storage.dialects.base import lock_key
from datastore.storage.tables import documents as d
from datastore.storage.tables import lineage as t


def _path(row: Any) -> str:
    return f"/{row.collection}/{row.doc_id}"


class LineageStore:
    """Closure-table statements of one space (each takes the caller's transaction).
    ``space=None`` reads across every space: maintenance only (``storage/scan.py``)."""

    def __init__(self, space: str | None) -> None:
        self.space = space

    def _own(self) -> list[sa.ColumnElement[bool]]:
        """The rows of this space (none when reading across spaces)."""
        return [] if self.space is None else [t.c.space == self.space]

    @staticmethod
    def _joined(pk: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """A document joined to its lineage rows: same pk, same space (co-located)."""
        return sa.and_(d.c.pk == pk, d.c.space == t.c.space)

    def lock(self, conn: Connection, space: str) -> None:
        """Serialise lineage changes of one space until the transaction ends."""
        dialect_of(conn).lock_transaction(conn, lock_key(space.encode()))

    def ancestors(self, conn: Connection, pk: int) -> list[tuple[int, int, str]]:
        """(pk, depth, path) of every ancestor, nearest first."""
        rows = conn.execute(
            sa.select(t.c.ancestor_pk, t.c.depth, d.c.collection, d.c.doc_id)
            .join(d, self._joined(t.c.ancestor_pk))
            .where(*self._own(), t.c.descendant_pk == pk)
            .order_by(t.c.depth)
        )
        return [(r.ancestor_pk, r.depth, _path(r)) for r in rows]

    def descendants(self, conn: Connection, pk: int) -> list[tuple[int, int]]:
        """(pk, depth) of every descendant."""
        rows = conn.execute(
            sa.select(t.c.descendant_pk, t.c.depth).where(*self._own(), t.c.ancestor_pk == pk)
        )
        return [(r.descendant_pk, r.depth) for r in rows]

    def children(self, conn: Connection, pk: int) -> list[tuple[int, str]]:
        """(pk, path) of the documents that extend this one directly, by path."""
        rows = conn.execute(
            sa.select(t.c.descendant_pk, d.c.collection, d.c.doc_id)
            .join(d, self._joined(t.c.descendant_pk))
            .where(*self._own(), t.c.ancestor_pk == pk, t.c.depth == 1)
        )
        return sorted(((r.descendant_pk, _path(r)) for r in rows), key=lambda x: x[1])

    def reparent(self, conn: Connection, pk: int, parent_pk: int | None) -> None:
        """Make ``pk`` (with its subtree) extend ``parent_pk`` (None: nothing)."""
        subtree = [(pk, 0), *self.descendants(conn, pk)]
        members = [member for member, _ in subtree]
        conn.execute(
            sa.delete(t).where(
                *self._own(), t.c.descendant_pk.in_(members), t.c.ancestor_pk.not_in(members)
            )
        )
        if parent_pk is None:
            return
        uppers = [(parent_pk, 0)] + [(a, depth) for a, depth, _ in self.ancestors(conn, parent_pk)]
        rows = [
            {"space": self.space, "ancestor_pk": a, "descendant_pk": s, "depth": da + ds + 1}
            for a, da in uppers
            for s, ds in subtree
        ]
        conn.execute(sa.insert(t), rows)

    def ancestor_bodies(
        self, conn: Connection, pks: Sequence[int]
    ) -> dict[int, list[dict[str, Any]]]:
        """For each pk, the bodies of its ancestors, nearest first."""
        if not pks:
            return {}
        rows = conn.execute(
            sa.select(t.c.descendant_pk, t.c.depth, d.c.body)
            .join(d, self._joined(t.c.ancestor_pk))
            .where(*self._own(), t.c.descendant_pk.in_(list(pks)))
            .order_by(t.c.descendant_pk, t.c.depth)
        )
        found: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            found.setdefault(row.descendant_pk, []).append(row.body)
        return found

    def families(
        self, conn: Connection, pks: Iterable[int]
    ) -> dict[int, tuple[list[str], list[str], list[str]]]:
        """For each pk: (ancestor paths nearest first, direct child paths, all descendant
        paths), children and descendants sorted."""
        keys = list(pks)
        out: dict[int, tuple[list[str], list[str], list[str]]] = {k: ([], [], []) for k in keys}
        if not keys:
            return out
        up = conn.execute(
            sa.select(t.c.descendant_pk, t.c.depth, d.c.collection, d.c.doc_id)
            .join(d, self._joined(t.c.ancestor_pk))
            .where(*self._own(), t.c.descendant_pk.in_(keys))
            .order_by(t.c.descendant_pk, t.c.depth)
        )
        for row in up:
            out[row.descendant_pk][0].append(_path(row))
        down = conn.execute(
            sa.select(t.c.ancestor_pk, t.c.depth, d.c.collection, d.c.doc_id)
            .join(d, self._joined(t.c.descendant_pk))
            .where(*self._own(), t.c.ancestor_pk.in_(keys))
        )
        for row in down:
            if row.depth == 1:
                out[row.ancestor_pk][1].append(_path(row))
            out[row.ancestor_pk][2].append(_path(row))
        for _, direct, every in out.values():
            direct.sort()
            every.sort()
        return out
