"""The sequencer (PostgreSQL): writers append without a lock, committed changes are numbered
after the commit. Transactions that commit out of the order of their writes, open ones, rolled
back and crashed ones: every committed change is delivered exactly once, in a valid order, and
nothing that did not commit holds the feed up. Migration 0008 converts an existing log."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from alembic import command

from datastore.changes.service import ChangeService
from datastore.config import Settings
from datastore.storage import changes as log
from datastore.storage import migrate
from datastore.storage.engine import Database

INSERT = sa.text(
    "INSERT INTO documents (space, collection, doc_id, body, created_at, updated_at, version)"
    " VALUES (:s, 'c', :d, '{}', :t, :t, 1)"
)
AT = "2026-01-01T00:00:00+00:00"


def _postgres(database: Database) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite has one writer: its changes are numbered at the write")


def _feed(database: Database, space: str, cursor: int) -> list[tuple[int, str, str]]:
    """Everything the feed delivers after ``cursor`` (as a subscriber would read it)."""

    async def follow() -> list[tuple[int, str, str]]:
        service = ChangeService(database, Settings())
        try:
            batch = await service.next_batch(space, "c", cursor, 1000, 0, fresh=True)
        finally:
            service.close()
        return [(d.seq, d.change.doc_id, d.change.kind) for d in batch.deliveries]

    return asyncio.run(follow())


def _head(database: Database, space: str) -> int:
    with database.read() as conn:
        return log.head(conn, space).head


def test_commits_out_of_write_order_are_delivered_once_in_commit_order(
    database: Database, space: str
) -> None:
    """A takes the smaller id, B the larger; B commits first. A reader between the two commits
    sees B; after A commits, A follows it. Nobody sees either twice or skips one."""
    _postgres(database)
    first, second = database.engine.connect(), database.engine.connect()
    try:
        first_tx = first.begin()
        first.execute(INSERT, {"s": space, "d": "a", "t": AT})
        second_tx = second.begin()
        second.execute(INSERT, {"s": space, "d": "b", "t": AT})
        with database.read() as conn:
            ids = dict(
                conn.execute(
                    sa.text("SELECT doc_id, id FROM changes WHERE space = :s"), {"s": space}
                ).all()
            )
        assert ids == {}  # neither has committed
        second_tx.commit()
        seen = _feed(database, space, 0)
        assert seen == [(1, "b", "created")]
        first_tx.commit()
        seen += _feed(database, space, seen[-1][0])
    finally:
        first.close()
        second.close()
    assert seen == [(1, "b", "created"), (2, "a", "created")]
    with database.read() as conn:
        rows = conn.execute(
            sa.text("SELECT doc_id, id, seq FROM changes WHERE space = :s ORDER BY seq"),
            {"s": space},
        ).all()
    assert [(r.doc_id, r.seq) for r in rows] == [("b", 1), ("a", 2)]
    assert rows[0].id > rows[1].id  # numbered in commit order, not in the order of the writes


def test_two_writers_of_one_document_keep_its_order(database: Database, space: str) -> None:
    """The second writer of a row waits on its lock until the first commits: its change is
    numbered after the first's whatever the sequencer's timing."""
    _postgres(database)
    with database.write() as conn:
        conn.execute(INSERT, {"s": space, "d": "x", "t": AT})
    touch = sa.text("UPDATE documents SET version = version + 1 WHERE space = :s AND doc_id = 'x'")
    first, second = database.engine.connect(), database.engine.connect()
    import threading

    try:
        first_tx = first.begin()
        first.execute(touch, {"s": space})
        second_tx = second.begin()
        waiting = threading.Thread(target=lambda: (second.execute(touch, {"s": space}),))
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()  # on the row lock
        first.execute(INSERT, {"s": space, "d": "y", "t": AT})
        first_tx.commit()
        waiting.join(10)
        second_tx.commit()
    finally:
        first.close()
        second.close()
    seen = _feed(database, space, 0)
    assert [(doc, kind) for _, doc, kind in seen] == [
        ("x", "created"),
        ("x", "updated"),
        ("y", "created"),
        ("x", "updated"),
    ]
    assert [seq for seq, _, _ in seen] == [1, 2, 3, 4]


@pytest.mark.parametrize("ending", ["rollback", "crash"])
def test_an_open_aborted_or_crashed_writer_leaves_no_gap_and_blocks_nothing(
    database: Database, space: str, ending: str
) -> None:
    """A writer that has appended and not committed holds nobody up; when it rolls back or its
    connection dies, its id is simply never numbered: the numbers run on without a gap."""
    _postgres(database)
    with database.write() as conn:
        conn.execute(INSERT, {"s": space, "d": "before", "t": AT})
    stuck = database.engine.connect()
    try:
        stuck_tx = stuck.begin()
        stuck.execute(INSERT, {"s": space, "d": "stuck", "t": AT})
        pid = stuck.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with database.write() as conn:
            conn.execute(INSERT, {"s": space, "d": "meanwhile", "t": AT})
        assert [doc for _, doc, _ in _feed(database, space, 0)] == ["before", "meanwhile"]
        if ending == "rollback":
            stuck_tx.rollback()
        else:
            with database.read() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        stuck.invalidate() if ending == "crash" else stuck.close()
    with database.write() as conn:
        conn.execute(INSERT, {"s": space, "d": "after", "t": AT})
    seen = _feed(database, space, 0)
    assert seen == [
        (1, "before", "created"),
        (2, "meanwhile", "created"),
        (3, "after", "created"),
    ]
    assert _head(database, space) == 3


def test_writers_never_wait_for_the_space_row(database: Database, space: str) -> None:
    """While the space's ``change_spaces`` row is locked (a sequencer run, or retention),
    writers of the space append and commit without waiting (0007 took that lock at each
    commit and held it through the commit)."""
    _postgres(database)
    with database.write() as conn:
        conn.execute(INSERT, {"s": space, "d": "a", "t": AT})
    with database.read() as conn:
        log.number(conn, space)
    holder, writer = database.engine.connect(), database.engine.connect()
    try:
        holder_tx = holder.begin()
        holder.execute(
            sa.text("SELECT 1 FROM change_spaces WHERE space = :s FOR UPDATE"), {"s": space}
        )
        writer_tx = writer.begin()
        writer.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
        writer.execute(INSERT, {"s": space, "d": "b", "t": AT})
        writer_tx.commit()  # LockNotAvailable had it queued behind the holder
        holder_tx.commit()
    finally:
        holder.close()
        writer.close()
    assert [doc for _, doc, _ in _feed(database, space, 0)] == ["a", "b"]


def test_numbers_given_for_a_read_that_rolls_back_stay(database: Database, space: str) -> None:
    """A read inside a transaction (behind a transaction pooler, a read is one, ended by a
    rollback) numbers on a transaction of its own: the numbers it saw are the ones kept, even
    when a change with a smaller id commits afterwards (numbered again in id order, it would
    take the number the reader saw)."""
    _postgres(database)
    late = database.engine.connect()
    try:
        late_tx = late.begin()
        late.execute(INSERT, {"s": space, "d": "late", "t": AT})  # the smaller id
        with database.write() as conn:
            conn.execute(INSERT, {"s": space, "d": "a", "t": AT})
        with database.engine.connect() as conn:
            transaction = conn.begin()
            seen = [(c.seq, c.doc_id) for c in log.read(conn, space, 0, 10)]
            transaction.rollback()
        late_tx.commit()
    finally:
        late.close()
    assert seen == [(1, "a")]
    assert [(seq, doc) for seq, doc, _ in _feed(database, space, 0)] == [(1, "a"), (2, "late")]


def _watermark(database: Database) -> int:
    with database.read() as conn:
        return int(conn.execute(sa.text("SELECT numbered_below FROM change_sequencer")).scalar())


def _number(database: Database, space: str | None = None) -> int:
    with database.read() as conn:
        return log.number(conn, space)


def test_the_watermark_never_passes_an_open_writer(database: Database, space: str) -> None:
    """Runs raise the watermark (the oldest transaction running when they began) only up to
    a writer that is still open, however many runs and other writes go by; when it commits,
    its change is numbered after theirs, and the watermark moves past it."""
    _postgres(database)
    slow = database.engine.connect()
    try:
        slow_tx = slow.begin()
        slow.execute(INSERT, {"s": space, "d": "slow", "t": AT})
        slow_xid = int(slow.execute(sa.text("SELECT pg_current_xact_id()::text")).scalar_one())
        for n in range(5):
            with database.write() as conn:
                conn.execute(INSERT, {"s": space, "d": f"quick{n}", "t": AT})
            _number(database)
            assert _watermark(database) <= slow_xid
        with database.read() as conn:
            # a run for the space finds nothing more: the quick ones are numbered, slow is open
            assert log.number(conn, space) == 0
        slow_tx.commit()
    finally:
        slow.close()
    _number(database)
    assert _watermark(database) > slow_xid
    with database.write() as conn:
        conn.execute(INSERT, {"s": space, "d": "later", "t": AT})
    seen = [doc for _, doc, _ in _feed(database, space, 0)]
    assert seen == [*(f"quick{n}" for n in range(5)), "slow", "later"]


def test_every_change_records_its_writer(database: Database, space: str) -> None:
    """The trigger's insert takes ``writer_xid`` from the column default: the writing
    transaction's id, which the sequencer's range relies on."""
    _postgres(database)
    with database.write() as conn:
        conn.execute(INSERT, {"s": space, "d": "a", "t": AT})
        xid = int(conn.execute(sa.text("SELECT pg_current_xact_id()::text")).scalar_one())
    with database.read() as conn:
        recorded = conn.execute(
            sa.text("SELECT writer_xid FROM changes WHERE space = :s"), {"s": space}
        ).scalar_one()
    assert recorded == xid


# -- migration 0008 --------------------------------------------------------------------------


def _rows(db: Database) -> list[tuple[str, int, str]]:
    with db.read() as conn:
        found = conn.execute(
            sa.text("SELECT space, seq, doc_id FROM changes ORDER BY space, seq")
        ).all()
    return [tuple(row) for row in found]


def _downgrade(db: Database, revision: str) -> None:
    config = migrate.alembic_config(db)
    with db.schema_change() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_0008_converts_an_existing_log_both_ways(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        migrate.upgrade(db, "0007_changes")
        with db.write() as conn:
            for space, doc in (("s1", "a"), ("s1", "b"), ("s2", "c")):
                conn.execute(INSERT, {"s": space, "d": doc, "t": AT})
        with db.write() as conn:
            conn.execute(sa.text("DELETE FROM documents WHERE doc_id = 'a'"))
        before = _rows(db)
        assert before == [("s1", 1, "a"), ("s1", 2, "b"), ("s1", 3, "a"), ("s2", 1, "c")]

        migrate.upgrade(db)
        assert _rows(db) == before
        with db.write() as conn:
            conn.execute(INSERT, {"s": "s1", "d": "d", "t": AT})
        with db.read() as conn:
            assert log.head(conn, "s1") == log.Head(4, 0)  # numbered on from the old head
            deleted = log.read(conn, "s1", 2, 10)[0]
        assert deleted.kind == "deleted" and deleted.old is not None
        assert [r for r in _rows(db) if r[0] == "s1"][-1] == ("s1", 4, "d")

        with db.write() as conn:  # left unnumbered (PostgreSQL) when the downgrade comes
            conn.execute(INSERT, {"s": "s2", "d": "e", "t": AT})
        _downgrade(db, "0007_changes")
        assert _rows(db)[-2:] == [("s2", 1, "c"), ("s2", 2, "e")]
        with db.write() as conn:
            conn.execute(INSERT, {"s": "s2", "d": "f", "t": AT})
        assert _rows(db)[-1] == ("s2", 3, "f")

        migrate.upgrade(db)
        with db.write() as conn:
            conn.execute(INSERT, {"s": "s2", "d": "g", "t": AT})
        with db.read() as conn:
            assert [c.doc_id for c in log.read(conn, "s2", 0, 10)] == ["c", "e", "f", "g"]
            assert log.head(conn, "s2").head == 4
    finally:
        db.dispose()


def test_0009_numbers_what_is_pending_both_ways(empty_url: str) -> None:
    """Changes left unnumbered under 0008 (no ``writer_xid``) are numbered by the upgrade,
    in order; changes pending at a downgrade are numbered by it; feeds run on after each."""
    db = Database(empty_url)
    try:
        if not db.is_postgresql:
            pytest.skip("SQLite numbers at the write")
        migrate.upgrade(db, "0008_change_sequencer")
        with db.write() as conn:
            for doc in ("a", "b"):
                conn.execute(INSERT, {"s": "s1", "d": doc, "t": AT})
        migrate.upgrade(db)
        assert _rows(db) == [("s1", 1, "a"), ("s1", 2, "b")]
        with db.write() as conn:
            conn.execute(INSERT, {"s": "s1", "d": "c", "t": AT})
        _downgrade(db, "0008_change_sequencer")
        assert _rows(db)[-1] == ("s1", 3, "c")
        migrate.upgrade(db)
        with db.write() as conn:
            conn.execute(INSERT, {"s": "s1", "d": "d", "t": AT})
        _number(db)
        assert [doc for _, _, doc in _rows(db)] == ["a", "b", "c", "d"]
        assert _watermark(db) > 0
    finally:
        db.dispose()


# -- the wake-up task's lifetime ---------------------------------------------------------------


def test_the_wake_up_task_ends_with_the_lifespan(database: Database, space: str) -> None:
    """The LISTEN connection (PostgreSQL) or the polling timer goes when the app's lifespan
    ends, before the database may go (a test's is dropped at the end of the session)."""

    async def run() -> asyncio.Task[None] | None:
        service = ChangeService(database, Settings())
        service.start()
        await service.next_batch(space, "c", 0, 10, 0.05)
        task = service._loops[asyncio.get_running_loop()].task
        assert task is not None and not task.done()
        await service.shutdown()
        return task

    task = asyncio.run(run())
    assert task is not None and task.done()


def test_the_wake_up_task_stops_when_nobody_follows(
    database: Database, space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a lifespan (an app driven by a test), the task still stops once nobody has
    followed the log for IDLE_SECONDS, and starts again for the next follower."""
    from datastore.changes import service as module

    monkeypatch.setattr(module, "IDLE_SECONDS", 0.1)
    monkeypatch.setattr(module, "FALLBACK_SECONDS", 0.05)

    async def run() -> None:
        service = ChangeService(database, Settings(changes_poll_ms=50))
        await service.next_batch(space, "c", 0, 10, 0.05)
        here = service._loops[asyncio.get_running_loop()]
        first = here.task
        assert first is not None
        for _ in range(100):  # a loaded machine runs timers late
            if first.done():
                break
            await asyncio.sleep(0.05)
        assert first.done()
        with database.write() as conn:
            conn.execute(INSERT, {"s": space, "d": "late", "t": AT})
        batch = await service.next_batch(space, "c", 0, 10, 2)
        assert [d.change.doc_id for d in batch.deliveries] == ["late"]
        assert here.task is not first and here.task is not None and not here.task.done()
        service.close()

    asyncio.run(run())


def test_the_worker_that_answered_a_write_numbers_it(database: Database, space: str) -> None:
    """After a successful write the serving worker runs the sequencer itself: the change is
    numbered without anyone reading the feed (no reader, no hub, no timer)."""
    _postgres(database)
    import time

    from datastore.auth.credentials import mint_token
    from tests.support.client import serve

    secret = "sequencer-test-secret-0123456789abcdef"
    token = mint_token({"sub": "u1", "exp": int(time.time()) + 600}, secret=secret)
    with serve(database, space, "multi-user.yaml", jwt_secret=secret) as app:
        created = app.post(
            "/posts",
            json={"ownerId": "u1", "title": "t"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        deadline, numbered = time.monotonic() + 5, None
        while numbered is None and time.monotonic() < deadline:
            with database.read() as conn:  # plain SQL: no numbering on the way
                numbered = conn.execute(
                    sa.text("SELECT seq FROM changes WHERE space = :s AND collection = 'posts'"),
                    {"s": space},
                ).scalar()
            time.sleep(0.02)
    assert numbered == 1
