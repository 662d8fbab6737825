"""Document reads and single-statement writes straight on psycopg's async driver (PostgreSQL).

The hottest requests are one statement each: ``GET /{collection}/{id}``, ``POST
/{collection}``, a listing, a count. Through the synchronous engine they cost a hand-off to a
worker thread and back plus SQLAlchemy's execution machinery (and, for the insert, BEGIN and
COMMIT round trips), which together were more CPU than everything else the request does
(measured with wrk, 64 connections, 2 workers: GET ~1,700 → ~2,900 requests/s with this path).
The SQL is the store's own statements (``storage/documents.py``), compiled once; a listing's is
compiled once per shape of its selection (``storage/prepared.py``) and only its values are bound
per request. Rows become ``StoredDocument`` by the store's one row mapping; driver errors become
datastore errors by the one table of ``storage/errors.py``. A PATCH that keeps ``$extends`` is
a read and a compare-and-swap ``UPDATE`` on the row's version (``update``). Anything else with
more than one statement (inheritance, nested collections, replacing) runs on the synchronous
engine, in one transaction.

A pool exists per event loop (each server worker runs one; tests open several), opened by the
app's lifespan; a loop without one (an app driven without its lifespan) connects per
statement.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from datastore.errors import Conflict, DatastoreError
from datastore.query.selection import CollectionFacts, Selection
from datastore.storage import plans
from datastore.storage.documents import (
    BY_PATH,
    HOLDS_ANY,
    INSERT_KEYS,
    INSERTS,
    UPDATE,
    WIDTH,
    StoredDocument,
    counting,
    document_from_row,
    insert_params,
    listing,
    update_params,
)
from datastore.storage.errors import translated
from datastore.storage.prepared import Compiled, Templates
from datastore.storage.tables import documents

_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]
_SQL = str(BY_PATH.compile(dialect=_DIALECT))
_SQL_LOCKED = str(BY_PATH.with_for_update().compile(dialect=_DIALECT))
_UPDATE = str(UPDATE.compile(dialect=_DIALECT))
_INSERT = str(INSERTS["postgresql"].compile(dialect=_DIALECT, column_keys=list(INSERT_KEYS)))
_HOLDS_ANY = str(HOLDS_ANY.compile(dialect=_DIALECT))
WAIT_SECONDS = 5.0
"""How long a request waits for a free connection before it gets 503."""
SUSPECT_SECONDS = 2.0
"""How long after a lost connection (or a wait that found none) requests wait only briefly."""
SUSPECT_WAIT = 0.2
"""A request's wait for a connection while the database is suspected down."""
OPTIMISTIC_ATTEMPTS = 3
"""Compare-and-swap attempts of ``update`` before it takes the row lock instead."""


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    set_json_loads(orjson.loads, conn)
    set_json_dumps(_dumps, conn)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class AsyncStore:
    """Pools of autocommit connections, one per running event loop."""

    def __init__(
        self,
        conninfo: str,
        *,
        pool_size: int,
        options: str,
        prepare_threshold: int | None = 5,
    ) -> None:
        self.conninfo = conninfo
        self.pool_size = pool_size
        self.options = options
        """libpq ``options`` of every connection (``Database`` sets the session's settings;
        none behind a transaction pooler, ``storage/pooler.py``)."""
        self.prepare_threshold = prepare_threshold
        """psycopg prepares a statement on this run on a connection (None: never, behind a
        transaction pooler)."""
        self.wait_seconds = WAIT_SECONDS
        self.templates = Templates(_DIALECT)
        self._suspect_until = 0.0
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}

    async def open(self) -> AsyncConnectionPool[Any]:
        """Open the pool of the running loop (connections are made in the background)."""
        loop = asyncio.get_running_loop()
        if loop in self._pools:
            return self._pools[loop]
        kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": self.prepare_threshold}
        if self.options:
            kwargs["options"] = self.options
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.pool_size,
            kwargs=kwargs,
            configure=_configure,
            timeout=self.wait_seconds,
            open=False,
        )
        if loop in self._pools:  # another task of this loop opened one meanwhile
            return self._pools[loop]
        self._pools[loop] = pool
        await pool.open(wait=False)
        return pool

    async def close(self) -> None:
        """Close the pool of the running loop."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = self._pools.get(asyncio.get_running_loop())
        try:
            if pool is None:
                async with self._unpooled() as conn:
                    yield conn
            else:
                async with pool.connection(timeout=self._wait()) as conn:
                    yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            if _connection_lost(exc):
                self._suspect_until = time.monotonic() + SUSPECT_SECONDS
            error: DatastoreError | None = translated(exc)
            if error is None:
                raise
            raise error from exc

    def _wait(self) -> float:
        """How long a request waits for a connection: ``wait_seconds``, or briefly while the
        database is suspected down (a connection was lost or none could be had lately), so
        that an outage is answered with 503 at once, not after a wait per request."""
        return self.wait_seconds if time.monotonic() >= self._suspect_until else SUSPECT_WAIT

    @asynccontextmanager
    async def _unpooled(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of its own for a loop the app's lifespan did not open a pool in (a
        request driven by hand, or an app run without its lifespan): a pool there would
        outlive the loop, its connections never closed."""
        settings: dict[str, Any] = {"options": self.options} if self.options else {}
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, prepare_threshold=self.prepare_threshold, **settings
        )
        async with conn:
            await _configure(conn)
            yield conn

    async def _rows(self, statement: Compiled) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cursor = await conn.execute(statement.sql, statement.params)
            return await cursor.fetchall()

    async def find(
        self, space: str, collection: str, selection: Selection, facts: CollectionFacts
    ) -> list[StoredDocument]:
        """``DocumentStore.find`` of a selection with a limit, as one statement."""

        def build(chosen: Selection) -> Any:
            where = plans.where(chosen, facts, "postgresql")
            keys = [*plans.sort_keys(chosen, facts, "postgresql"), (documents.c.pk, False)]
            assert chosen.limit is not None
            return listing(space, collection, where, keys, chosen.limit, chosen.offset)

        key = ("find", space, collection)
        rows = await self._rows(self.templates.compiled(key, selection, facts, build))
        return [document_from_row(row) for row in rows]

    async def page(
        self, space: str, collection: str, selection: Selection, facts: CollectionFacts
    ) -> list[tuple[StoredDocument, list[Any]]]:
        """``DocumentStore.page`` of a selection (``plans.page`` compiles its boundary)."""

        def build(chosen: Selection) -> Any:
            where, keys = plans.page(chosen, facts, "postgresql")
            assert chosen.limit is not None
            return listing(space, collection, where, keys, chosen.limit, 0)

        key = ("page", space, collection)
        rows = await self._rows(self.templates.compiled(key, selection, facts, build))
        return [(document_from_row(row), list(row[WIDTH:])) for row in rows]

    async def count(
        self, space: str, collection: str, selection: Selection, facts: CollectionFacts
    ) -> int:
        """How many of a collection's documents are selected."""

        def build(chosen: Selection) -> Any:
            return counting(space, collection, plans.where(chosen, facts, "postgresql"))

        key = ("count", space, collection)
        rows = await self._rows(self.templates.compiled(key, selection, facts, build))
        return int(rows[0][0])

    async def holds_any(self, space: str, collection: str) -> bool:
        """Whether the collection holds a document."""
        async with self._connection() as conn:
            cursor = await conn.execute(_HOLDS_ANY, {"space": space, "collection": collection})
            row = await cursor.fetchone()
        return row is not None and bool(row[0])

    async def get(self, space: str, collection: str, doc_id: str) -> StoredDocument | None:
        """The document at this place, or None."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                _SQL, {"space": space, "collection": collection, "doc_id": doc_id}
            )
            row = await cursor.fetchone()
        return document_from_row(row) if row is not None else None

    async def insert(
        self, space: str, collection: str, doc_id: str, body: Any, now: datetime
    ) -> StoredDocument | None:
        """Insert a document that extends nothing (one autocommitted statement); None when the
        id is taken."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                _INSERT, insert_params(space, collection, doc_id, Jsonb(body), now, None)
            )
            row = await cursor.fetchone()
        return document_from_row(row) if row is not None else None

    async def update(
        self,
        space: str,
        collection: str,
        doc_id: str,
        decide: Callable[[StoredDocument], Any],
        now: datetime,
    ) -> StoredDocument | None:
        """``update_locked``'s outcome in two autocommitted statements instead of four: read
        the document, ``decide(current)`` its new body (raising to refuse; nothing is
        written), and write it only if the row is still at the version read (the ``UPDATE``
        matches on it). A write that lost a race reads again and decides again; after
        ``OPTIMISTIC_ATTEMPTS`` lost races (a document many clients update at once) it
        queues on the row lock with ``update_locked``. ``decide`` may so run more than once,
        each time on the then-current document. None when there is no such document."""
        place = (space, collection, doc_id)
        for _ in range(OPTIMISTIC_ATTEMPTS):
            async with self._connection() as conn:
                found, written = await _read_decide_write(conn, _SQL, place, decide, now)
            if not found:
                return None
            if written is not None:
                return written
        return await self.update_locked(space, collection, doc_id, decide, now)

    async def update_locked(
        self,
        space: str,
        collection: str,
        doc_id: str,
        decide: Callable[[StoredDocument], Any],
        now: datetime,
    ) -> StoredDocument | None:
        """In one transaction: lock the document, ``decide(current)`` its new body (raising
        to refuse, which rolls back), write it; None when there is no such document. The
        document keeps its ``$extends``."""
        place = (space, collection, doc_id)
        async with self._connection() as conn, conn.transaction():
            found, written = await _read_decide_write(conn, _SQL_LOCKED, place, decide, now)
        if not found:
            return None
        if written is None:  # cannot happen under the row lock; as the synchronous path says
            raise Conflict("The document changed while it was being updated; retry.")
        return written


async def _read_decide_write(
    conn: psycopg.AsyncConnection[Any],
    select: str,
    place: tuple[str, str, str],
    decide: Callable[[StoredDocument], Any],
    now: datetime,
) -> tuple[bool, StoredDocument | None]:
    """Read the document at ``place`` with ``select``, ``decide`` its new body, and write it
    if the row is still at the version read: (whether the document exists, the written
    document or None when the write matched no row). The document keeps its ``$extends``."""
    space, collection, doc_id = place
    cursor = await conn.execute(
        select, {"space": space, "collection": collection, "doc_id": doc_id}
    )
    row = await cursor.fetchone()
    if row is None:
        return False, None
    current = document_from_row(row)
    body = decide(current)
    cursor = await conn.execute(
        _UPDATE, update_params(space, current, Jsonb(body), now, current.extends)
    )
    row = await cursor.fetchone()
    return True, document_from_row(row) if row is not None else None


def _connection_lost(exc: BaseException) -> bool:
    """Whether an error says the database cannot be reached (no connection could be had, or
    one broke), as opposed to a statement it refused."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    code = exc.sqlstate
    return code is None or code.startswith("08") or code in ("57P01", "57P02", "57P03")
