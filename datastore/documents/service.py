"""Document operations, one transaction each: create, read, replace, patch, delete, list.

The service is async at its surface; the HTTP layer awaits it and manages no threads. Where an
operation runs is the backend's, fixed when the service is made: on PostgreSQL, reads and the
single-statement writes run on psycopg's async driver (``storage/async_store.py``); every
transaction of several statements (inheritance, nested collections, replacing, by-query writes)
and everything on SQLite runs on the synchronous engine on a worker thread
(``concurrency.run_in_threadpool``).

The service owns the rules that need the stored state: a nested document needs its parent,
ids are unique, ``If-Match`` / ``If-None-Match`` preconditions, and "no lost update": a PATCH
decides the new body from the stored document and writes it only if the document is still at
the version it read (compare-and-swap, deciding again after a lost race; a row lock after
repeated losses, and always in a transaction that reads the lineage).
Callers pass small callbacks for what depends on the operation (authorisation, the change).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from datastore.clock import utc_now
from datastore.concurrency import run_in_threadpool
from datastore.documents.change import Change
from datastore.documents.extends import Links, inherit
from datastore.documents.sources import FAMILY_SOURCES, Lineage, claim_problems
from datastore.errors import (
    CollectionNotFound,
    Conflict,
    DocumentNotFound,
    InvalidParam,
    PreconditionFailed,
    ValidationFailed,
)
from datastore.ids import generate_id
from datastore.query import ast
from datastore.query.selection import CollectionFacts, Selection
from datastore.storage import plans
from datastore.storage.async_store import AsyncStore
from datastore.storage.documents import DocumentStore, StoredDocument
from datastore.storage.engine import Database
from datastore.storage.errors import retry_conflicts, translate_errors
from datastore.types import Document

Check = Callable[[StoredDocument, Document], None]
"""A callback that raises (e.g. Forbidden) when a document may not be touched or written:
it gets the document and its effective body (its own values with the inherited ones)."""


@dataclass(frozen=True)
class Guards:
    """The access checks of a write, run in its transaction: ``existing`` on the stored
    document before anything else (before the preconditions, so a refused caller learns
    nothing from them), ``result`` on what the write would store (with the values it would
    inherit)."""

    existing: Check | None = None
    result: Check | None = None


NO_GUARDS = Guards()


def etag(doc: StoredDocument) -> str:
    """The ETag of a document: its version, quoted."""
    return f'"{doc.version}"'


@dataclass(frozen=True)
class Preconditions:
    """``If-Match`` (a set of ETags or ``*``) and ``If-None-Match: *`` of a write."""

    if_match: tuple[str, ...] | None = None
    if_none_match_any: bool = False

    def check(self, current: StoredDocument | None) -> None:
        """Raise PreconditionFailed when the preconditions do not hold for ``current``."""
        if self.if_none_match_any and current is not None:
            raise PreconditionFailed("The document already exists (If-None-Match: *).")
        if self.if_match is None:
            return
        if current is None:
            raise PreconditionFailed("The document does not exist (If-Match).")
        if "*" in self.if_match:
            return
        if etag(current) not in self.if_match:
            raise PreconditionFailed("The document has changed (If-Match does not match).")


NO_PRECONDITIONS = Preconditions()


class _NeedsLineage(Exception):
    """A PATCH of a document that extends another, or that changes ``$extends``: it leaves
    the async path for the synchronous one, which reads the lineage."""


def parent_of(collection: str) -> tuple[str, str] | None:
    """The (collection, id) of the document a nested collection hangs under, or None."""
    parts = collection.split("/")
    if len(parts) < 3:
        return None
    return "/".join(parts[:-2]), parts[-2]


def _family(change: Change) -> bool:
    return any(claim.source in FAMILY_SOURCES for claim in change.claimed)


def _raise_problems(problems: list[InvalidParam]) -> None:
    if problems:
        raise ValidationFailed(invalid_params=problems)


def _refuse_claims(change: Change) -> None:
    """A document being created has no source values yet: every claim is refused."""
    _raise_problems(claim_problems(change.claimed, None))


def missing_parent(collection: str) -> CollectionNotFound:
    """The answer when the parent document of a nested collection does not exist (or the
    caller may not read it: the same answer)."""
    parent = parent_of(collection)
    path = f"/{parent[0]}/{parent[1]}" if parent is not None else f"/{collection}"
    return CollectionNotFound(f"The parent document {path} does not exist.")


class DocumentService:
    """Document operations of one space."""

    def __init__(
        self, db: Database, space: str, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.db = db
        self.space = space
        self.store = DocumentStore()
        self.links = Links(self.store, space)
        self.clock = clock
        self.fast: AsyncStore | None = db.async_store
        """The async driver's store (PostgreSQL), or None: everything runs on threads."""
        self.fast_reads = db.async_store if db.replica is None else None
        """The async driver's store for reads; None with a read replica, whose routing
        (``storage/replica.py``, read-your-writes) is the threaded path's."""

    # -- reads ---------------------------------------------------------------------------

    async def get(self, collection: str, doc_id: str) -> StoredDocument:
        """The document; raises DocumentNotFound."""
        if self.fast_reads is None:
            doc = await run_in_threadpool(self._get, collection, doc_id)
        else:
            doc = await self.fast_reads.get(self.space, collection, doc_id)
        if doc is None:
            raise DocumentNotFound()
        return doc

    async def get_parent(self, collection: str) -> StoredDocument | None:
        """The parent document of a nested collection (None for a root collection); raises
        CollectionNotFound when the parent does not exist."""
        parent = parent_of(collection)
        if parent is None:
            return None
        try:
            return await self.get(*parent)
        except DocumentNotFound:
            raise missing_parent(collection) from None

    async def find(
        self, collection: str, selection: Selection, facts: CollectionFacts
    ) -> list[StoredDocument]:
        """The selected documents of a collection, in its order (then creation order), within
        its limit and offset; raises CollectionNotFound when its parent is missing."""
        if self.fast_reads is None or selection.limit is None:
            return await run_in_threadpool(self._find, collection, selection, facts)
        await self.get_parent(collection)
        return await self.fast_reads.find(self.space, collection, selection, facts)

    async def page(
        self, collection: str, selection: Selection, facts: CollectionFacts
    ) -> list[tuple[StoredDocument, list[Any]]]:
        """A keyset page: up to ``selection.limit`` documents past its boundary, in its order
        (reversed for a page before the boundary), each with its order values (``pk`` last).
        Raises BadRequest when the boundary does not fit the order."""
        if self.fast_reads is None:
            return await run_in_threadpool(self._page, collection, selection, facts)
        await self.get_parent(collection)
        return await self.fast_reads.page(self.space, collection, selection, facts)

    async def count(self, collection: str, selection: Selection, facts: CollectionFacts) -> int:
        """How many of a collection's documents are selected."""
        if self.fast_reads is None:
            return await run_in_threadpool(self._count, collection, selection, facts)
        await self.get_parent(collection)
        return await self.fast_reads.count(self.space, collection, selection, facts)

    async def holds_any(self, collection: str) -> bool:
        """Whether the collection holds a document (a dynamic collection exists while it
        does)."""
        if self.fast_reads is None:
            return await run_in_threadpool(self._holds_any, collection)
        return await self.fast_reads.holds_any(self.space, collection)

    async def root_collections(self, limit: int) -> list[str]:
        """The names of the collections that hold documents at the root, at most ``limit``
        (the dynamic collections of a Codehooks-style blueprint among them)."""
        return await run_in_threadpool(self._root_collections, limit)

    async def find_in(
        self,
        parts: Sequence[tuple[str, ast.Node, CollectionFacts]],
        *,
        sort: Sequence[ast.SortKey],
        facts: CollectionFacts,
        limit: int,
    ) -> list[StoredDocument]:
        """Documents of several collections at once: (collection, node, facts) selects those
        of each; ordered by ``sort`` compiled with ``facts``, then creation order."""
        return await run_in_threadpool(
            lambda: self._find_in(parts, sort=sort, facts=facts, limit=limit)
        )

    async def effective(self, doc: StoredDocument) -> Document:
        """The body GET shows: own values with the inherited ones."""
        if not doc.extends:
            return doc.body
        return (await self.resolve([doc], family=False))[doc.pk][0]

    async def resolve(
        self, docs: Sequence[StoredDocument], *, family: bool
    ) -> dict[int, tuple[Document, Lineage]]:
        """The effective (inherited) body and, when ``family``, the lineage of each document."""
        if not family and not any(doc.extends for doc in docs):
            return {doc.pk: (doc.body, Lineage()) for doc in docs}
        return await run_in_threadpool(lambda: self._resolve(docs, family=family))

    def _get(self, collection: str, doc_id: str) -> StoredDocument | None:
        with translate_errors(), self.db.read() as conn:
            return self.store.get(conn, self.space, collection, doc_id)

    def _find(
        self, collection: str, selection: Selection, facts: CollectionFacts
    ) -> list[StoredDocument]:
        where = plans.where(selection, facts, self.db.dialect)
        keys = plans.sort_keys(selection, facts, self.db.dialect)
        with translate_errors(), self.db.read() as conn:
            self._require_parent(conn, collection)
            return self.store.find(
                conn,
                self.space,
                collection,
                where=where,
                keys=keys,
                limit=selection.limit,
                offset=selection.offset,
            )

    def _find_in(
        self,
        parts: Sequence[tuple[str, ast.Node, CollectionFacts]],
        *,
        sort: Sequence[ast.SortKey],
        facts: CollectionFacts,
        limit: int,
    ) -> list[StoredDocument]:
        collections = [collection for collection, _, _ in parts]
        where = plans.any_of(parts, self.db.dialect)
        order_by = plans.order_by(sort, facts, self.db.dialect)
        with translate_errors(), self.db.read() as conn:
            return self.store.find_in(
                conn, self.space, collections, where=where, order_by=order_by, limit=limit
            )

    def _resolve(
        self, docs: Sequence[StoredDocument], *, family: bool
    ) -> dict[int, tuple[Document, Lineage]]:
        with translate_errors(), self.db.read() as conn:
            return self.links.resolve(conn, docs, family=family)

    def _page(
        self, collection: str, selection: Selection, facts: CollectionFacts
    ) -> list[tuple[StoredDocument, list[Any]]]:
        assert selection.limit is not None
        limit = selection.limit
        where, keys = plans.page(selection, facts, self.db.dialect)
        with translate_errors(), self.db.read() as conn:
            self._require_parent(conn, collection)
            return self.store.page(
                conn, self.space, collection, where=where, keys=keys, limit=limit
            )

    def _count(self, collection: str, selection: Selection, facts: CollectionFacts) -> int:
        where = plans.where(selection, facts, self.db.dialect)
        with translate_errors(), self.db.read() as conn:
            self._require_parent(conn, collection)
            return self.store.count(conn, self.space, collection, where=where)

    def _root_collections(self, limit: int) -> list[str]:
        with translate_errors(), self.db.read() as conn:
            return self.store.root_collections(conn, self.space, limit)

    def _holds_any(self, collection: str) -> bool:
        with translate_errors(), self.db.read() as conn:
            return self.store.holds_any(conn, self.space, collection)

    # -- writes --------------------------------------------------------------------------

    async def create(
        self,
        collection: str,
        doc_id: str | None,
        change: Change,
        *,
        guards: Guards = NO_GUARDS,
    ) -> StoredDocument:
        """Insert a document with a generated (or the given) id; raises Conflict when the id
        is taken and CollectionNotFound when the parent document is missing. On PostgreSQL a
        document of a root collection that extends nothing (and has no result guard) is one
        INSERT on the async driver."""
        if (
            self.fast is None
            or change.extends is not None
            or guards.result is not None
            or parent_of(collection) is not None
        ):
            return await run_in_threadpool(
                lambda: self._create(collection, doc_id, change, guards=guards)
            )
        _refuse_claims(change)
        doc = await self.fast.insert(
            self.space, collection, doc_id or generate_id(), change.body, self.clock()
        )
        if doc is None:
            raise Conflict(f"A document with the id {doc_id!r} already exists.")
        return doc

    async def put(
        self,
        collection: str,
        doc_id: str,
        change: Change,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guards: Guards = NO_GUARDS,
        create: bool = True,
    ) -> tuple[StoredDocument, bool]:
        """Create the document with this id (unless not ``create``: DocumentNotFound), or
        replace it; returns (document, created)."""
        return await run_in_threadpool(
            lambda: self._put(
                collection,
                doc_id,
                change,
                preconditions=preconditions,
                guards=guards,
                create=create,
            )
        )

    async def patch(
        self,
        collection: str,
        doc_id: str,
        compute: Callable[[StoredDocument], Change],
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        relink: bool = False,
        guards: Guards = NO_GUARDS,
    ) -> StoredDocument:
        """Update a document from its stored state: ``compute`` gets the current document and
        returns the change (raising to refuse it); it may run again on a newer document after
        a lost race. ``relink``: the change may set ``$extends``. Raises DocumentNotFound.

        On PostgreSQL a change to a document that extends nothing and keeps ``$extends`` alone
        is a read and a compare-and-swap update on the async driver (``AsyncStore.update``);
        one that needs the lineage (and every PATCH on SQLite) is one transaction on a worker
        thread that reads with a row lock (SQLite: under its single writer)."""

        def in_transaction() -> StoredDocument:
            return self._patch(
                collection,
                doc_id,
                compute,
                preconditions=preconditions,
                relink=relink,
                guards=guards,
            )

        if self.fast is None or relink:
            return await run_in_threadpool(in_transaction)

        def decide(current: StoredDocument) -> Document:
            if current.extends is not None:
                raise _NeedsLineage()
            if guards.existing is not None:
                guards.existing(current, current.body)
            preconditions.check(current)
            change = compute(current)
            if change.extends != current.extends or _family(change):
                raise _NeedsLineage()
            _raise_problems(claim_problems(change.claimed, current))
            if guards.result is not None:
                guards.result(replace(current, body=change.body), change.body)
            return change.body

        try:
            doc = await self.fast.update(self.space, collection, doc_id, decide, self.clock())
        except _NeedsLineage:
            return await run_in_threadpool(in_transaction)
        if doc is None:
            raise DocumentNotFound()
        return doc

    async def delete(
        self,
        collection: str,
        doc_id: str,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guards: Guards = NO_GUARDS,
        detach: bool = False,
    ) -> StoredDocument:
        """Delete a document and its sub-collections' documents; raises DocumentNotFound, and
        Conflict when other documents extend it (unless ``detach``: their ``$extends`` is
        cleared in the same transaction)."""
        return await run_in_threadpool(
            lambda: self._delete(
                collection, doc_id, preconditions=preconditions, guards=guards, detach=detach
            )
        )

    async def update_many(
        self,
        collection: str,
        selection: Selection,
        facts: CollectionFacts,
        compute: Callable[[StoredDocument], Change],
        *,
        guards: Guards = NO_GUARDS,
    ) -> int:
        """Update every selected document in one transaction (all or nothing: a guard or
        ``compute`` that raises for one document rolls every change back); the count."""
        return await run_in_threadpool(
            lambda: self._update_many(collection, selection, facts, compute, guards=guards)
        )

    async def delete_many(
        self, collection: str, selection: Selection, facts: CollectionFacts
    ) -> int:
        """Delete every selected document (and their sub-collections) in one transaction."""
        return await run_in_threadpool(self._delete_many, collection, selection, facts)

    # -- transactions (on a worker thread) -------------------------------------------------

    @retry_conflicts
    def _create(
        self,
        collection: str,
        doc_id: str | None,
        change: Change,
        *,
        guards: Guards = NO_GUARDS,
    ) -> StoredDocument:
        _refuse_claims(change)
        with translate_errors(), self.db.write() as conn:
            self._require_parent(conn, collection)
            now = self.clock()
            new_id = doc_id or generate_id()
            if change.extends is not None:
                self.links.lineage.lock(conn, self.space)
            target = self.links.target(conn, self.space, collection, new_id, change)
            doc = self.store.insert(
                conn, self.space, collection, new_id, change.body, now, extends=change.extends
            )
            if doc is None:
                raise Conflict(f"A document with the id {doc_id!r} already exists.")
            self._check_result(conn, guards, doc, target)
            self.links.attach(conn, doc.pk, None, target)
            return doc

    @retry_conflicts
    def _put(
        self,
        collection: str,
        doc_id: str,
        change: Change,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guards: Guards = NO_GUARDS,
        create: bool = True,
    ) -> tuple[StoredDocument, bool]:
        with translate_errors(), self.db.write() as conn:
            self._require_parent(conn, collection)
            now = self.clock()
            # Lineage lock before any row lock: linking inserts rows that reference (and so
            # share-lock) other documents, so a consistent order avoids deadlocks.
            if change.extends is not None:
                self.links.lineage.lock(conn, self.space)
            target = self.links.target(conn, self.space, collection, doc_id, change)
            current = None
            for _ in range(10):
                current = self.store.get(conn, self.space, collection, doc_id, lock=True)
                if current is not None:
                    break
                if not create:
                    raise DocumentNotFound()
                preconditions.check(None)
                _refuse_claims(change)
                created = self.store.insert(
                    conn, self.space, collection, doc_id, change.body, now, extends=change.extends
                )
                if created is not None:
                    self._check_result(conn, guards, created, target)
                    self.links.attach(conn, created.pk, None, target)
                    return created, True
                # Someone created it between our read and our insert (and may have deleted it
                # again since): read once more, and replace or create.
            if current is None:
                raise Conflict("The document is being created and deleted concurrently; retry.")
            try:
                self._check_existing(conn, guards, current)
            except DocumentNotFound:
                # A document the caller may not read answers as a missing one would.
                preconditions.check(None)
                raise
            preconditions.check(current)
            self._check_claims(conn, change, current)
            self.links.check_cycle(conn, current, target, change)
            replaced = self.store.update(
                conn, self.space, current, change.body, now, extends=change.extends
            )
            if replaced is None:
                raise Conflict("The document changed while it was being replaced; retry.")
            self._check_result(conn, guards, replaced, target)
            self.links.attach(conn, replaced.pk, current.extends, target)
            return replaced, False

    @retry_conflicts
    def _patch(
        self,
        collection: str,
        doc_id: str,
        compute: Callable[[StoredDocument], Change],
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        relink: bool = False,
        guards: Guards = NO_GUARDS,
    ) -> StoredDocument:
        """Update a document from its stored state: ``compute`` gets the locked current
        document and returns the change (raising to refuse it). ``relink``: the change may
        set ``$extends``. Raises DocumentNotFound."""
        with translate_errors(), self.db.write() as conn:
            if relink:
                self.links.lineage.lock(conn, self.space)
            current = self.store.get(conn, self.space, collection, doc_id, lock=True)
            if current is None:
                raise DocumentNotFound()
            self._check_existing(conn, guards, current)
            preconditions.check(current)
            change = compute(current)
            self._check_claims(conn, change, current)
            moves = change.extends != current.extends
            target = None
            if moves:
                target = self.links.target(conn, self.space, collection, doc_id, change)
                self.links.check_cycle(conn, current, target, change)
            updated = self.store.update(
                conn, self.space, current, change.body, self.clock(), extends=change.extends
            )
            if updated is None:
                raise Conflict("The document changed while it was being updated; retry.")
            if moves:
                self._check_result(conn, guards, updated, target)
                self.links.attach(conn, updated.pk, current.extends, target)
            else:
                self._check_result(conn, guards, updated, None, inherits_from=current)
            return updated

    @retry_conflicts
    def _delete(
        self,
        collection: str,
        doc_id: str,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guards: Guards = NO_GUARDS,
        detach: bool = False,
    ) -> StoredDocument:
        with translate_errors(), self.db.write() as conn:
            if detach:
                self.links.lineage.lock(conn, self.space)
            current = self.store.get(conn, self.space, collection, doc_id, lock=True)
            if current is None:
                raise DocumentNotFound()
            self._check_existing(conn, guards, current)
            preconditions.check(current)
            self.links.release(conn, self.space, current, self.clock(), detach=detach)
            self.store.delete(conn, self.space, current)
            return current

    @retry_conflicts
    def _update_many(
        self,
        collection: str,
        selection: Selection,
        facts: CollectionFacts,
        compute: Callable[[StoredDocument], Change],
        *,
        guards: Guards = NO_GUARDS,
    ) -> int:
        where = plans.where(selection, facts, self.db.dialect)
        with translate_errors(), self.db.write() as conn:
            self._require_parent(conn, collection)
            now = self.clock()
            matched = self.store.find(conn, self.space, collection, where=where, lock=True)
            inherited = self.links.lineage.ancestor_bodies(
                conn, [doc.pk for doc in matched if doc.extends]
            )
            for current in matched:
                change = compute(current)
                updated = self.store.update(
                    conn, self.space, current, change.body, now, extends=change.extends
                )
                if updated is None:
                    raise Conflict("A document changed while it was being updated; retry.")
                if guards.result is not None:
                    guards.result(updated, inherit(updated.body, inherited.get(current.pk, [])))
            return len(matched)

    @retry_conflicts
    def _delete_many(self, collection: str, selection: Selection, facts: CollectionFacts) -> int:
        where = plans.where(selection, facts, self.db.dialect)
        with translate_errors(), self.db.write() as conn:
            self._require_parent(conn, collection)
            matched = self.store.find(conn, self.space, collection, where=where, lock=True)
            for doc in matched:
                self.store.delete(conn, self.space, doc)
            return len(matched)

    # -- helpers -------------------------------------------------------------------------

    def _check_claims(self, conn: Connection, change: Change, current: StoredDocument) -> None:
        """The read-only source properties given must equal ``current``'s."""
        if not change.claimed:
            return
        lineage = Lineage()
        if _family(change):
            lineage = self.links.resolve(conn, [current], family=True)[current.pk][1]
        _raise_problems(claim_problems(change.claimed, current, lineage))

    def _check_existing(self, conn: Connection, guards: Guards, current: StoredDocument) -> None:
        if guards.existing is not None:
            guards.existing(current, self.links.effective(conn, current))

    def _check_result(
        self,
        conn: Connection,
        guards: Guards,
        written: StoredDocument,
        target: StoredDocument | None,
        *,
        inherits_from: StoredDocument | None = None,
    ) -> None:
        """Run the result guard on a document just written in this transaction (raising
        rolls the write back): it inherits from ``target``'s lineage, or keeps the lineage of
        ``inherits_from``."""
        if guards.result is None:
            return
        if inherits_from is not None:
            body = self.links.effective(conn, replace(inherits_from, body=written.body))
        else:
            body = inherit(written.body, self.links.through(conn, target))
        guards.result(written, body)

    def _require_parent(self, conn: Connection, collection: str) -> None:
        parent = parent_of(collection)
        if parent is not None and not self.store.exists(conn, self.space, *parent):
            raise missing_parent(collection)
