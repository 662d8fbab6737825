"""The change log written by the triggers on ``documents``: every write path, numbered per
space without gaps, in commit order, and retention."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import sqlalchemy as sa

from datastore.documents.change import Change
from datastore.documents.service import DocumentService
from datastore.storage import changes as log
from datastore.storage.engine import Database


def _log(db: Database, space: str, after: int = 0) -> list[log.LoggedChange]:
    with db.read() as conn:
        return log.read(conn, space, after, 10_000)


def test_every_write_is_logged_in_order(database: Database, space: str) -> None:
    service = DocumentService(database, space)
    asyncio.run(service.create("users", "u1", Change({"name": "a"})))
    asyncio.run(service.create("users/u1/notes", "n1", Change({"text": "x"})))
    asyncio.run(service.put("users", "u1", Change({"name": "b"})))
    asyncio.run(service.delete("users", "u1"))
    entries = _log(database, space)
    assert [(e.seq, e.collection, e.doc_id, e.kind) for e in entries][:3] == [
        (1, "users", "u1", "created"),
        (2, "users/u1/notes", "n1", "created"),
        (3, "users", "u1", "updated"),
    ]
    # The nested collection's documents go in the same transaction as their parent.
    assert sorted((e.doc_id, e.kind) for e in entries[3:]) == [("n1", "deleted"), ("u1", "deleted")]
    deleted = next(e for e in entries if e.kind == "deleted" and e.doc_id == "u1")
    assert deleted.old is not None and deleted.old.body == {"name": "b"}
    assert deleted.old.version == 2
    assert all(e.old is None for e in entries if e.kind != "deleted")
    with database.read() as conn:
        assert log.head(conn, space) == log.Head(5, 0)


def test_a_rolled_back_write_leaves_no_gap(database: Database, space: str) -> None:
    service = DocumentService(database, space)
    asyncio.run(service.create("c", "a", Change({})))

    def rolled_back() -> None:
        with database.write() as conn:
            conn.execute(
                sa.text("UPDATE documents SET version = version + 1 WHERE space = :s"),
                {"s": space},
            )
            raise RuntimeError

    with pytest.raises(RuntimeError):
        rolled_back()
    asyncio.run(service.create("c", "b", Change({})))
    assert [e.seq for e in _log(database, space)] == [1, 2]


def test_spaces_are_numbered_apart(database: Database, space: str) -> None:
    asyncio.run(DocumentService(database, space).create("c", "a", Change({})))
    asyncio.run(DocumentService(database, space + "x").create("c", "a", Change({})))
    assert [e.seq for e in _log(database, space)] == [1]
    assert [e.seq for e in _log(database, space + "x")] == [1]


def test_retention_raises_the_horizon_before_deleting(database: Database, space: str) -> None:
    service = DocumentService(database, space)
    for i in range(5):
        asyncio.run(service.create("c", str(i), Change({})))
    with database.write() as conn:
        bound = log.prune_bound(conn, space, cutoff_ms=0, keep=2)
        assert bound == 3
        log.raise_horizon(conn, space, bound)
    with database.write() as conn:
        assert log.delete_through(conn, space, bound, batch=2) == 2
    with database.write() as conn:
        assert log.delete_through(conn, space, bound, batch=2) == 1
    assert [e.seq for e in _log(database, space)] == [4, 5]
    with database.read() as conn:
        assert log.head(conn, space) == log.Head(5, 3)
    now_ms = int(time.time() * 1000) + 1000
    with database.write() as conn:
        assert log.prune_bound(conn, space, cutoff_ms=now_ms, keep=0) == 5


def test_a_transaction_of_many_writes_numbers_them_in_a_row(database: Database, space: str) -> None:
    """One transaction writing many documents (an import, a by-query write) numbers its
    changes one after another; the next transaction follows on. (Each change once updated
    the space's row: a transaction of n changes cost n squared, and seeding 200,000 documents
    in one statement did not finish in minutes.)"""
    with database.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO documents (space, collection, doc_id, body, created_at,"
                " updated_at, version) VALUES (:s, 'c', :d, '{}', :t, :t, 1)"
            ),
            [{"s": space, "d": f"d{n}", "t": "2026-01-01T00:00:00+00:00"} for n in range(3000)],
        )
    service = DocumentService(database, space)
    asyncio.run(service.create("c", "last", Change({})))
    entries = _log(database, space)
    assert [e.seq for e in entries] == list(range(1, 3002))
    assert entries[-1].doc_id == "last"
    with database.read() as conn:
        assert log.head(conn, space).head == 3001


def test_numbers_go_on_after_retention_removed_every_change(database: Database, space: str) -> None:
    service = DocumentService(database, space)
    for i in range(3):
        asyncio.run(service.create("c", str(i), Change({})))
    with database.write() as conn:
        log.raise_horizon(conn, space, 3)
    with database.write() as conn:
        assert log.delete_through(conn, space, 3, batch=10) == 3
    assert _log(database, space) == []
    with database.read() as conn:
        assert log.head(conn, space) == log.Head(3, 3)
    asyncio.run(service.create("c", "next", Change({})))
    assert [e.seq for e in _log(database, space)] == [4]


def test_concurrent_writers_commit_in_number_order(database: Database, space: str) -> None:
    """A reader following the log never passes a number a slower transaction commits later:
    on PostgreSQL the numbers are taken at commit under the space's row lock."""
    if not database.is_postgresql:
        pytest.skip("SQLite has one writer: commit order is number order")
    service = DocumentService(database, space)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(40):
                with database.write() as conn:
                    conn.execute(
                        sa.text(
                            "INSERT INTO documents (space, collection, doc_id, body, created_at,"
                            " updated_at) VALUES (:s, 'c', :id, '{}', now(), now())"
                        ),
                        {"s": space, "id": f"{worker}-{i}"},
                    )
                    time.sleep(0.001 * (worker % 3))  # commits overtake each other
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def follow() -> None:
        cursor, deadline = 0, time.monotonic() + 60
        while cursor < 160 and time.monotonic() < deadline:
            with database.read() as conn:
                batch = log.read(conn, space, cursor, 1000)
            for entry in batch:
                seen.append(entry.seq)
                cursor = entry.seq
            time.sleep(0.001)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    reader = threading.Thread(target=follow)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join(timeout=70)
    assert not errors, errors
    assert seen == list(range(1, 161)), [n for n in range(1, 161) if n not in seen]
    del service


def test_retention_by_age_and_count(database: Database, space: str) -> None:
    from datastore.changes.service import ChangeService
    from datastore.config import Settings

    service = DocumentService(database, space)
    for i in range(6):
        asyncio.run(service.create("c", str(i), Change({})))
    by_count = ChangeService(database, Settings(changes_retention_count=4))
    by_count.prune(spaces=[space])
    assert [e.seq for e in _log(database, space)] == [3, 4, 5, 6]
    by_count.prune(spaces=[space])  # nothing more to do
    assert [e.seq for e in _log(database, space)] == [3, 4, 5, 6]
    later = int(time.time() * 1000) + 60_000
    by_age = ChangeService(
        database, Settings(changes_retention_seconds=30, changes_retention_count=0)
    )
    by_age.prune(now_ms=later, spaces=[space])
    assert _log(database, space) == []
    with database.read() as conn:
        assert log.head(conn, space) == log.Head(6, 6)


def test_writers_of_one_space_do_not_deadlock_on_the_log(database: Database, space: str) -> None:
    """Had the number been taken at the write, the first writer would hold the space's row
    from its first write to its commit, and a second writer holding a document the first
    one then writes would wait for it: a deadlock. Taken at commit, it cannot."""
    if not database.is_postgresql:
        pytest.skip("SQLite has one writer")
    service = DocumentService(database, space)
    asyncio.run(service.create("c", "a", Change({})))
    asyncio.run(service.create("c", "b", Change({})))
    touch = sa.text("UPDATE documents SET version = version + 1 WHERE space = :s AND doc_id = :id")
    errors: list[BaseException] = []
    first, second = database.engine.connect(), database.engine.connect()
    try:
        first_tx, second_tx = first.begin(), second.begin()
        first.execute(touch, {"s": space, "id": "a"})

        def run(conn: sa.Connection, tx: sa.RootTransaction, doc_id: str) -> None:
            try:
                conn.execute(touch, {"s": space, "id": doc_id})
                tx.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        other = threading.Thread(target=run, args=(second, second_tx, "b"))
        other.start()
        time.sleep(0.3)  # the second writer holds b (and, at the write, would wait)
        mine = threading.Thread(target=run, args=(first, first_tx, "b"))
        mine.start()
        other.join(10)
        mine.join(10)
    finally:
        first.close()
        second.close()
    assert errors == []
    assert [e.kind for e in _log(database, space)][-2:] == ["updated", "updated"]
