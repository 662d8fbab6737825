"""Single-statement document operations straight on psycopg's async driver (PostgreSQL):
reading one document by its place, and inserting one into a root collection.

The hottest requests, ``GET /{collection}/{id}`` and ``POST /{collection}``, are one statement
each. Through the synchronous engine they cost a hand-off to a worker thread and back plus
SQLAlchemy's execution machinery (and, for the insert, BEGIN and COMMIT round trips), which
together were more CPU than everything else the request does (measured with wrk, 64
connections, 2 workers: GET ~1,700 → ~2,900 requests/s with this path). The SQL is the store's
own statements (``storage/documents.py``), compiled once; rows become the same
``StoredDocument``; driver errors become the same problems as on the synchronous path. A PATCH
that keeps ``$extends`` is a read and a compare-and-swap ``UPDATE`` on the row's version
(``update``). Anything else with more than one statement (inheritance, nested collections,
replacing) stays on the synchronous engine, in one transaction.

A pool exists per event loop (each server worker runs one; tests open several), opened by
the app's lifespan. Where none is open (SQLite, or an app driven without its lifespan),
callers use the synchronous engine instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from datastore.errors import BadRequest, Conflict, ServiceUnavailable
from datastore.storage.documents import (
    BY_PATH,
    INSERT_KEYS,
    INSERTS,
    UPDATE,
    StoredDocument,
    insert_params,
    update_params,
)
from datastore.storage.engine import IDLE_IN_TRANSACTION
from datastore.storage.errors import too_large

_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]
_SQL = str(BY_PATH.compile(dialect=_DIALECT))
_SQL_LOCKED = str(BY_PATH.with_for_update().compile(dialect=_DIALECT))
_UPDATE = str(UPDATE.compile(dialect=_DIALECT))
_INSERT = str(INSERTS["postgresql"].compile(dialect=_DIALECT, column_keys=list(INSERT_KEYS)))
WAIT_SECONDS = 5.0
"""How long a request waits for a free connection before it gets 503."""
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
        statement_timeout_ms: int,
        transaction_pooler: bool = False,
    ) -> None:
        self.conninfo = conninfo
        self.pool_size = pool_size
        timeout = (
            f" -c statement_timeout={int(statement_timeout_ms)}" if statement_timeout_ms else ""
        )
        # Behind a transaction pooler (storage/pooler.py): no startup options, no prepares.
        self.options = "" if transaction_pooler else IDLE_IN_TRANSACTION + timeout
        self.prepare_threshold: int | None = None if transaction_pooler else 5
        self.wait_seconds = WAIT_SECONDS
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}

    async def open(self) -> None:
        """Open the pool of the running loop (connections are made in the background)."""
        loop = asyncio.get_running_loop()
        if loop in self._pools:
            return
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
        await pool.open(wait=False)
        self._pools[loop] = pool

    async def close(self) -> None:
        """Close the pool of the running loop."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    def ready(self) -> bool:
        """Whether the running loop has an open pool."""
        try:
            return asyncio.get_running_loop() in self._pools
        except RuntimeError:
            return False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = self._pools[asyncio.get_running_loop()]
        try:
            async with pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise ServiceUnavailable("The database is unavailable; try again shortly.") from exc
        except psycopg.errors.QueryCanceled as exc:
            raise BadRequest("The query took too long and was cancelled; narrow it down.") from exc
        except psycopg.DataError as exc:
            message = exc.diag.message_primary or ""
            raise BadRequest(
                "A value in the request cannot be stored or compared"
                + (f": {message}." if message else ".")
            ) from exc
        except psycopg.OperationalError as exc:  # an index row too large is one (class 54)
            raise too_large(exc) or ServiceUnavailable(
                "The database is unavailable; try again shortly."
            ) from exc

    async def get(self, space: str, collection: str, doc_id: str) -> StoredDocument | None:
        """The document at this place, or None."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                _SQL, {"space": space, "collection": collection, "doc_id": doc_id}
            )
            row = await cursor.fetchone()
        return _document(row) if row is not None else None

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
        return _document(row) if row is not None else None

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
    current = _document(row)
    body = decide(current)
    cursor = await conn.execute(
        _UPDATE, update_params(space, current, Jsonb(body), now, current.extends)
    )
    row = await cursor.fetchone()
    return True, _document(row) if row is not None else None


def _document(row: tuple[Any, ...]) -> StoredDocument:
    pk, coll, doc, body, created, updated, version, extends = row
    return StoredDocument(
        pk=pk,
        collection=coll,
        doc_id=doc,
        body=body,
        created_at=_utc(created),
        updated_at=_utc(updated),
        version=version,
        extends=extends,
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
