"""Document inheritance (``$extends``): linking, cycle checks, detaching, and resolution.

A document that extends another (``{"extends": "/events/base"}``) shows, for every top-level
property it does not set (missing or ``null``), the value of the nearest ancestor that sets it,
up a chain of any depth; a change to an ancestor shows through at once because nothing is
copied. The lineage lives in the closure table (``storage/lineage.py``), maintained in the same
transaction as the write, so resolving a document is one indexed query for its ancestors'
bodies. Source properties are never inherited (they are not in bodies). Schema defaults apply
after inheritance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from datastore.documents.change import Change
from datastore.documents.sources import Lineage
from datastore.errors import BadRequest, Conflict, InvalidParam
from datastore.storage.documents import DocumentStore, StoredDocument
from datastore.storage.lineage import LineageStore
from datastore.types import Document

INVALID_TITLE = "Invalid extending document"


def split_path(path: str, name: str) -> tuple[str, str]:
    """``/users/u1/events/e1`` → ``("users/u1/events", "e1")``; raises BadRequest."""
    parts = path.strip().strip("/").split("/")
    if not path.startswith("/") or len(parts) < 2 or len(parts) % 2 or any(not p for p in parts):
        raise BadRequest(
            title=INVALID_TITLE,
            invalid_params=[
                InvalidParam(name, "must be the path of a document, like /events/base")
            ],
        )
    return "/".join(parts[:-1]), parts[-1]


def inherit(body: Document, ancestors: Sequence[Document]) -> Document:
    """``body`` with every property it does not set (missing or null) taken from the nearest
    ancestor that sets it (``ancestors`` nearest first)."""
    out = dict(body)
    for ancestor in ancestors:
        for key, value in ancestor.items():
            if out.get(key) is None and (value is not None or key not in out):
                out[key] = value
    return out


class Links:
    """Inheritance operations inside the service's transactions."""

    def __init__(self, store: DocumentStore, space: str) -> None:
        self.store = store
        self.lineage = LineageStore(space)

    def target(
        self, conn: Connection, space: str, collection: str, doc_id: str, change: Change
    ) -> StoredDocument | None:
        """The document ``change`` extends (None when it extends nothing); raises BadRequest
        when it does not exist or is the document itself."""
        if change.extends is None:
            return None
        self.lineage.lock(conn, space)
        target_collection, target_id = split_path(change.extends, change.extends_name)
        own = f"/{collection}/{doc_id}"
        if (target_collection, target_id) == (collection, doc_id):
            raise self._cycle(change, [own, own])
        target = self.store.get(conn, space, target_collection, target_id)
        if target is None:
            raise BadRequest(
                title=INVALID_TITLE,
                invalid_params=[
                    InvalidParam(change.extends_name, "Document to extend does not exist")
                ],
            )
        return target

    def check_cycle(
        self,
        conn: Connection,
        current: StoredDocument,
        target: StoredDocument | None,
        change: Change,
    ) -> None:
        """Raise BadRequest when making ``current`` extend ``target`` would close a cycle."""
        if target is None:
            return
        chain = [current.path, target.path]
        if target.pk == current.pk:
            raise self._cycle(change, [current.path, current.path])
        for pk, _, path in self.lineage.ancestors(conn, target.pk):
            chain.append(path)
            if pk == current.pk:
                raise self._cycle(change, chain)

    def _cycle(self, change: Change, chain: list[str]) -> BadRequest:
        return BadRequest(
            title=INVALID_TITLE,
            invalid_params=[
                InvalidParam(change.extends_name, "would create a cycle: " + " → ".join(chain))
            ],
        )

    def attach(
        self, conn: Connection, pk: int, old: str | None, target: StoredDocument | None
    ) -> None:
        """Record that ``pk`` now extends ``target`` (or nothing), moving its subtree."""
        new = target.path if target is not None else None
        if old is None and new is None:
            return
        self.lineage.reparent(conn, pk, target.pk if target is not None else None)

    def release(
        self, conn: Connection, space: str, doc: StoredDocument, now: datetime, *, detach: bool
    ) -> None:
        """Before deleting ``doc``: refuse (Conflict listing the children) when others extend
        it, or with ``detach`` clear their ``$extends`` in this transaction — each child keeps
        the values it showed, inherited ones copied into its own body, so it stays valid."""
        children = self.lineage.children(conn, doc.pk)
        if not children:
            return
        if not detach:
            paths = [path for _, path in children]
            raise Conflict(
                f"{doc.path} is extended by {', '.join(paths)}; delete them first or add "
                "?detach=true to clear their extends.",
                extra={"extendedBy": paths},
            )
        self.lineage.lock(conn, space)
        inherited = self.lineage.ancestor_bodies(conn, [pk for pk, _ in children])
        for child_pk, _ in children:
            child = self.store.get_by_pk(conn, space, child_pk)
            if child is None:
                continue
            # The child keeps what it shows now: inherited values become its own.
            body = inherit(child.body, inherited.get(child_pk, []))
            self.store.update(conn, space, child, body, now, extends=None)
            self.lineage.reparent(conn, child_pk, None)

    def effective(self, conn: Connection, doc: StoredDocument) -> Document:
        """``doc``'s body with the values it inherits (what GET shows and rules see)."""
        if not doc.extends:
            return doc.body
        return inherit(doc.body, self.lineage.ancestor_bodies(conn, [doc.pk]).get(doc.pk, []))

    def through(self, conn: Connection, target: StoredDocument | None) -> list[Document]:
        """The bodies a document extending ``target`` inherits from, nearest first."""
        if target is None:
            return []
        return [target.body, *self.lineage.ancestor_bodies(conn, [target.pk]).get(target.pk, [])]

    def resolve(
        self, conn: Connection, docs: Sequence[StoredDocument], *, family: bool
    ) -> dict[int, tuple[Document, Lineage]]:
        """Effective bodies (and lineages when ``family``) of documents, in two queries."""
        inheriting = [doc.pk for doc in docs if doc.extends]
        bodies = self.lineage.ancestor_bodies(conn, inheriting)
        families: dict[int, Any] = (
            self.lineage.families(conn, [doc.pk for doc in docs]) if family else {}
        )
        out: dict[int, tuple[Document, Lineage]] = {}
        for doc in docs:
            body = inherit(doc.body, bodies.get(doc.pk, []))
            lineage = Lineage()
            if doc.pk in families:
                up, direct, every = families[doc.pk]
                lineage = Lineage(tuple(up), tuple(direct), tuple(every))
            out[doc.pk] = (body, lineage)
        return out
