"""The async read path (PostgreSQL): same documents as the synchronous store, same problems when
the database is away, and the fallback where no pool is open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from starlette.testclient import TestClient

from datastore.clock import utc_now
from datastore.errors import BadRequest, ServiceUnavailable
from datastore.storage.async_store import OPTIMISTIC_ATTEMPTS, AsyncStore
from datastore.storage.documents import DocumentStore, StoredDocument
from datastore.storage.engine import Database
from tests.http.test_outage import proxied_app

T = TypeVar("T")


def test_sqlite_has_no_async_store(database: Database) -> None:
    assert (database.async_store is None) == (not database.is_postgresql)


def test_async_get_equals_the_synchronous_get(database: Database, space: str) -> None:
    if database.async_store is None:
        pytest.skip("the async path is PostgreSQL's")
    store = DocumentStore()
    body = {"title": "é", "n": 12345678901234567890, "nested": {"a": [1, None, True]}}
    with database.write() as conn:
        store.insert(conn, space, "things", "t1", body, utc_now(), extends=None)
    with database.read() as conn:
        expected = store.get(conn, space, "things", "t1")
    reader = database.async_store

    async def read() -> tuple[object, object, object]:
        unpooled = await reader.get(space, "things", "t1")  # no pool in this loop yet
        await reader.open()
        try:
            return (
                unpooled,
                await reader.get(space, "things", "t1"),
                await reader.get(space, "things", "missing"),
            )
        finally:
            await reader.close()

    unpooled, found, missing = asyncio.run(read())
    assert found == expected == unpooled
    assert missing is None


def with_pool(store: AsyncStore, work: Callable[[], Awaitable[T]]) -> T:
    """``work()`` in a fresh event loop, with the store's pool open around it."""

    async def run() -> T:
        await store.open()
        try:
            return await work()
        finally:
            await store.close()

    return asyncio.run(run())


def test_unreachable_database_is_503_within_the_wait() -> None:
    reader = AsyncStore("postgresql://postgres@127.0.0.1:1/none", pool_size=2, options="")
    reader.wait_seconds = 0.5

    began = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        with_pool(reader, lambda: reader.get("s", "c", "d"))
    assert time.monotonic() - began < 5


def test_get_by_id_through_an_outage(database: Database, space: str) -> None:
    """GET by id (the async path) during an outage: 503, then recovery by itself."""
    with proxied_app(database, space, pool_size=2) as (proxy, app), TestClient(app) as client:
        assert client.get("/events/nope").status_code == 404
        proxy.cut()
        down = client.get("/events/nope")
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"]
        proxy.start()
        deadline = time.monotonic() + 15
        while client.get("/events/nope").status_code != 404:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.2)


def test_postgresql_reads_are_autocommit(database: Database) -> None:
    """Pitfall: ``read()`` on PostgreSQL runs outside a transaction (no BEGIN/ROLLBACK round
    trips), so ``SET LOCAL`` does nothing there; code that needs a transaction uses
    ``write()``."""
    if not database.is_postgresql:
        pytest.skip("SQLite reads are a transaction (one snapshot)")
    with database.read() as conn:
        conn.exec_driver_sql("SELECT pg_sleep(0.02)")
        same = conn.exec_driver_sql("SELECT now() = statement_timestamp()").scalar_one()
    assert same is True  # each statement is its own transaction
    with database.write() as conn:
        conn.exec_driver_sql("SELECT pg_sleep(0.02)")
        same = conn.exec_driver_sql("SELECT now() = statement_timestamp()").scalar_one()
    assert same is False


def test_async_insert_is_what_the_synchronous_store_reads(database: Database, space: str) -> None:
    store = database.async_store
    if store is None:
        pytest.skip("the async path is PostgreSQL's")
    body = {"title": "é", "n": 12345678901234567890, "tags": ["a", None]}
    now = utc_now()

    async def insert() -> tuple[object, object, BaseException | None]:
        first = await store.insert(space, "things", "i1", body, now)
        again = await store.insert(space, "things", "i1", {"other": True}, now)
        try:
            await store.insert(space, "things", "i2", {"bad": "nul \u0000 here"}, now)
        except BadRequest as refused:
            return first, again, refused
        return first, again, None

    first, again, refused = with_pool(store, insert)
    with database.read() as conn:
        stored = DocumentStore().get(conn, space, "things", "i1")
        assert DocumentStore().get(conn, space, "things", "i2") is None
    assert first == stored and stored is not None and stored.body == body
    assert again is None  # the id was taken: nothing written
    assert isinstance(refused, BadRequest)  # PostgreSQL cannot store U+0000: a 400, not a 500


def test_locked_update_writes_or_rolls_back(database: Database, space: str) -> None:
    store = _async_store_with(database, space, "u1", {"n": 1})

    class Refused(Exception):
        pass

    def refuse(current: object) -> object:
        raise Refused()

    async def run() -> tuple[object, object, bool]:
        updated = await store.update_locked(
            space, "things", "u1", lambda d: {"n": d.body["n"] + 1}, utc_now()
        )
        missing = await store.update_locked(space, "things", "nope", lambda d: {"n": 0}, utc_now())
        try:
            await store.update_locked(space, "things", "u1", refuse, utc_now())
        except Refused:
            return updated, missing, True
        return updated, missing, False

    updated, missing, refused = with_pool(store, run)
    with database.read() as conn:
        stored = DocumentStore().get(conn, space, "things", "u1")
    assert stored is not None and updated == stored
    assert (stored.body, stored.version, missing, refused) == ({"n": 2}, 2, None, True)


def test_update_decides_again_after_losing_a_race(database: Database, space: str) -> None:
    """A write between ``update``'s read and its UPDATE makes the UPDATE match nothing; the
    change is decided again on the newer document, so the other write is kept."""
    store = _async_store_with(database, space, "r1", {"n": 1, "other": 0})
    sync = DocumentStore()
    seen: list[int] = []

    def decide(current: StoredDocument) -> object:
        seen.append(current.version)
        if len(seen) == 1:  # another client writes after our read
            with database.write() as conn:
                sync.update(conn, space, current, {"n": 1, "other": 7}, utc_now(), extends=None)
        return {**current.body, "n": current.body["n"] + 1}

    updated = with_pool(store, lambda: store.update(space, "things", "r1", decide, utc_now()))
    assert seen == [1, 2]
    assert updated is not None
    assert (updated.body, updated.version) == ({"n": 2, "other": 7}, 3)


def test_update_takes_the_row_lock_after_repeated_lost_races(
    database: Database, space: str
) -> None:
    store = _async_store_with(database, space, "r2", {"n": 0})
    sync = DocumentStore()
    calls: list[int] = []

    def decide(current: StoredDocument) -> object:
        calls.append(current.version)
        if len(calls) <= OPTIMISTIC_ATTEMPTS:  # lose every optimistic attempt
            with database.write() as conn:
                sync.update(conn, space, current, {"n": -1}, utc_now(), extends=None)
        return {"n": 100}

    updated = with_pool(store, lambda: store.update(space, "things", "r2", decide, utc_now()))
    assert len(calls) == OPTIMISTIC_ATTEMPTS + 1
    assert updated is not None and updated.body == {"n": 100}
    assert updated.version == OPTIMISTIC_ATTEMPTS + 2


def test_concurrent_updates_of_one_document_lose_nothing(database: Database, space: str) -> None:
    store = _async_store_with(database, space, "hot", {"n": 0})

    def inc(current: StoredDocument) -> object:
        return {"n": current.body["n"] + 1}

    async def run() -> None:
        await asyncio.gather(
            *(store.update(space, "things", "hot", inc, utc_now()) for _ in range(60))
        )

    with_pool(store, run)
    with database.read() as conn:
        stored = DocumentStore().get(conn, space, "things", "hot")
    assert stored is not None and (stored.body, stored.version) == ({"n": 60}, 61)
    missing = with_pool(store, lambda: store.update(space, "things", "nope", inc, utc_now()))
    assert missing is None


def _async_store_with(database: Database, space: str, doc_id: str, body: object) -> AsyncStore:
    """The database's async store, with one document ``things/<doc_id>`` stored; skips the
    test on SQLite (the async path is PostgreSQL's)."""
    store = database.async_store
    if store is None:
        pytest.skip("the async path is PostgreSQL's")
    with database.write() as conn:
        DocumentStore().insert(conn, space, "things", doc_id, body, utc_now())
    return store
