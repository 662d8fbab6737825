"""The job queue: enqueue, claim, finish, fail (retry with backoff or dead-letter).

A job is *claimable* when it is ``queued`` and due (``run_at <= now``), or ``running`` with an
expired claim (its worker died or hung: the visibility timeout gives it back). Claiming takes
the oldest claimable job of the topics with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any
number of workers on any number of machines share a topic without taking the same job at the
same time; on SQLite the single-writer lock serialises claims (one worker process). Delivery is
at least once: a job whose worker dies is run again after its claim expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastore.storage.dialects import dialect_of
from datastore.storage.tables import jobs as t
from datastore.types import DEAD, DONE, JSON, QUEUED, RUNNING

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class Job:
    """One job and its state."""

    id: str
    space: str
    topic: str
    payload: JSON
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    locked_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        space=row.space,
        topic=row.topic,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        run_at=row.run_at,
        locked_until=row.locked_until,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


class JobStore:
    """Rows of the ``jobs`` table (each method takes the caller's transaction)."""

    def enqueue(
        self,
        conn: Connection,
        *,
        job_id: str,
        space: str,
        topic: str,
        payload: JSON,
        max_attempts: int,
        now: datetime,
    ) -> Job:
        """Store a new queued job, due now."""
        values = {
            "id": job_id,
            "space": space,
            "topic": topic,
            "payload": payload,
            "status": QUEUED,
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_at": now,
            "created_at": now,
            "updated_at": now,
        }
        conn.execute(sa.insert(t).values(**values))
        job = self.get(conn, space, job_id)
        assert job is not None
        return job

    def get(self, conn: Connection, space: str, job_id: str) -> Job | None:
        """A job of the space, or None."""
        row = conn.execute(sa.select(t).where(t.c.space == space, t.c.id == job_id)).first()
        return _job(row) if row is not None else None

    def claim(
        self,
        conn: Connection,
        space: str,
        topics: Sequence[str],
        *,
        worker: str,
        now: datetime,
        visibility: timedelta,
    ) -> Job | None:
        """Claim the oldest claimable job of ``topics`` for ``worker``; None when there is none.

        A job whose claim expired after its last allowed attempt is dead-lettered here.
        """
        while True:
            query = (
                sa.select(t)
                .where(
                    t.c.space == space,
                    t.c.topic.in_(list(topics)),
                    sa.or_(
                        sa.and_(t.c.status == QUEUED, t.c.run_at <= now),
                        sa.and_(t.c.status == RUNNING, t.c.locked_until <= now),
                    ),
                )
                .order_by(t.c.run_at, t.c.created_at)
                .limit(1)
            )
            query = dialect_of(conn).for_update(query, skip_locked=True)
            row = conn.execute(query).first()
            if row is None:
                return None
            job = _job(row)
            if job.status == RUNNING and job.attempts >= job.max_attempts:
                self._update(
                    conn,
                    job,
                    now,
                    status=DEAD,
                    locked_until=None,
                    locked_by=None,
                    finished_at=now,
                    last_error="the worker did not finish within the visibility timeout",
                )
                continue
            self._update(
                conn,
                job,
                now,
                status=RUNNING,
                attempts=job.attempts + 1,
                locked_until=now + visibility,
                locked_by=worker[:200],
            )
            claimed = self.get(conn, space, job.id)
            assert claimed is not None
            return claimed

    def finish(self, conn: Connection, job: Job, *, worker: str, now: datetime) -> bool:
        """Mark a claimed job done; False when the claim was lost (another worker has it)."""
        return self._release(conn, job, worker, now, status=DONE, finished_at=now)

    def fail(
        self,
        conn: Connection,
        job: Job,
        error: str,
        *,
        worker: str,
        now: datetime,
        retry_in: timedelta,
    ) -> bool:
        """Record a failed attempt: queued again after ``retry_in``, or dead when it was the
        last allowed attempt. False when the claim was lost."""
        if job.attempts >= job.max_attempts:
            return self._release(
                conn,
                job,
                worker,
                now,
                status=DEAD,
                finished_at=now,
                last_error=error[:MAX_ERROR_LENGTH],
            )
        return self._release(
            conn,
            job,
            worker,
            now,
            status=QUEUED,
            run_at=now + retry_in,
            last_error=error[:MAX_ERROR_LENGTH],
        )

    def counts(self, conn: Connection, space: str, topic: str) -> dict[str, int]:
        """Jobs of a topic by status."""
        rows = conn.execute(
            sa.select(t.c.status, sa.func.count())
            .where(t.c.space == space, t.c.topic == topic)
            .group_by(t.c.status)
        )
        return {status: int(n) for status, n in rows}

    def topics(self, conn: Connection, space: str) -> dict[str, dict[str, int]]:
        """Every topic of the space that holds jobs: its jobs by status."""
        rows = conn.execute(
            sa.select(t.c.topic, t.c.status, sa.func.count())
            .where(t.c.space == space)
            .group_by(t.c.topic, t.c.status)
        )
        found: dict[str, dict[str, int]] = {}
        for topic, status, n in rows:
            found.setdefault(topic, {})[status] = int(n)
        return found

    def dead(self, conn: Connection, space: str, topic: str, limit: int) -> list[Job]:
        """The topic's dead jobs, the most recently failed first."""
        rows = conn.execute(
            sa.select(t)
            .where(t.c.space == space, t.c.topic == topic, t.c.status == DEAD)
            .order_by(t.c.updated_at.desc(), t.c.id)
            .limit(limit)
        )
        return [_job(row) for row in rows]

    def retry(self, conn: Connection, job: Job, now: datetime) -> bool:
        """Queue a dead job again, due now, its attempts reset; False when it is not dead
        (any more: a concurrent retry got there first)."""
        result = conn.execute(
            sa.update(t)
            .where(t.c.space == job.space, t.c.id == job.id, t.c.status == DEAD)
            .values(
                status=QUEUED,
                attempts=0,
                run_at=now,
                locked_until=None,
                locked_by=None,
                finished_at=None,
                updated_at=now,
            )
        )
        return bool(result.rowcount)

    def _release(
        self, conn: Connection, job: Job, worker: str, now: datetime, **values: Any
    ) -> bool:
        result = conn.execute(
            sa.update(t)
            .where(
                t.c.space == job.space,
                t.c.id == job.id,
                t.c.status == RUNNING,
                t.c.locked_by == worker[:200],
                t.c.attempts == job.attempts,
            )
            .values(updated_at=now, locked_until=None, locked_by=None, **values)
        )
        return bool(result.rowcount)

    def _update(self, conn: Connection, job: Job, now: datetime, **values: Any) -> None:
        conn.execute(
            sa.update(t)
            .where(t.c.space == job.space, t.c.id == job.id)
            .values(updated_at=now, **values)
        )
