"""What the system routes ask of the database: whether it answers (``/__health``), and the
figures ``/__metrics`` exports (connections in use, jobs by space, topic and status)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc

from datastore.concurrency import run_in_threadpool
from datastore.errors import ServiceUnavailable
from datastore.storage.engine import Database
from datastore.storage.tables import jobs
from datastore.types import DEAD, QUEUED, RUNNING


def ping(db: Database) -> None:
    """One round trip to the database; raises ServiceUnavailable when it does not answer."""
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise ServiceUnavailable("The database is unreachable.") from exc


async def answers(db: Database) -> None:
    """``ping``, on a worker thread."""
    await run_in_threadpool(ping, db)


def connections_in_use(db: Database) -> int:
    """How many of the pool's connections are checked out."""
    pool: Any = db.engine.pool
    checked_out = getattr(pool, "checkedout", None)
    return checked_out() if callable(checked_out) else 0


def queue_depths(db: Database) -> list[tuple[str, str, str, int]]:
    """(space, topic, status, count) of the jobs queued, running or dead."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(jobs.c.space, jobs.c.topic, jobs.c.status, sa.func.count())
            .where(jobs.c.status.in_([QUEUED, RUNNING, DEAD]))
            .group_by(jobs.c.space, jobs.c.topic, jobs.c.status)
        )
        return [(space, topic, status, count) for space, topic, status, count in rows]


async def figures(db: Database) -> tuple[int, list[tuple[str, str, str, int]]]:
    """(``connections_in_use``, ``queue_depths``), the latter read on a worker thread."""
    return connections_in_use(db), await run_in_threadpool(queue_depths, db)
