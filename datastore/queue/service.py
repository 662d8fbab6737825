"""Queue operations of one space: enqueue a job, read its status; for operators, the topics'
counts, a topic's dead letters, and retrying a dead job (one transaction each; async at the
surface, run on a worker thread)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from datastore.clock import format_datetime, utc_now
from datastore.concurrency import run_in_threadpool
from datastore.errors import Conflict, NotFound
from datastore.ids import check_collection_name, generate_id
from datastore.limits import MAX_DEAD_LISTED
from datastore.storage.engine import Database
from datastore.storage.errors import translate_errors
from datastore.storage.jobs import Job, JobStore
from datastore.types import JOB_STATUSES, JSON


def check_topic(topic: str, param: str = "topic") -> str:
    """``topic`` if it may name a queue topic; raises BadRequest otherwise."""
    return check_collection_name(topic, param)


def job_json(job: Job) -> dict[str, Any]:
    """The public form of a job's status."""

    def when(value: datetime | None) -> str | None:
        return format_datetime(value) if value is not None else None

    return {
        "_id": job.id,
        "topic": job.topic,
        "status": job.status,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "lastError": job.last_error,
        "payload": job.payload,
        "createdAt": when(job.created_at),
        "updatedAt": when(job.updated_at),
        "runAt": when(job.run_at),
        "finishedAt": when(job.finished_at),
    }


class QueueService:
    """The queues of one space."""

    def __init__(
        self,
        db: Database,
        space: str,
        *,
        max_attempts: int = 5,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.space = space
        self.max_attempts = max_attempts
        self.store = JobStore()
        self.clock = clock

    async def enqueue(self, topic: str, payload: JSON) -> Job:
        """Store a job durably (committed before this returns)."""
        return await run_in_threadpool(self._enqueue, topic, payload)

    async def get(self, topic: str, job_id: str) -> Job:
        """A job of the topic; raises NotFound."""
        return await run_in_threadpool(self._get, topic, job_id)

    def _enqueue(self, topic: str, payload: JSON) -> Job:
        with translate_errors(), self.db.write() as conn:
            return self.store.enqueue(
                conn,
                job_id=generate_id(),
                space=self.space,
                topic=topic,
                payload=payload,
                max_attempts=self.max_attempts,
                now=self.clock(),
            )

    def _get(self, topic: str, job_id: str) -> Job:
        with translate_errors(), self.db.read() as conn:
            return self._job_in(conn, topic, job_id)

    def _job_in(self, conn: Connection, topic: str, job_id: str) -> Job:
        """The job of the topic; raises NotFound (a job of another topic is not there)."""
        job = self.store.get(conn, self.space, job_id)
        if job is None or job.topic != topic:
            raise NotFound(f"No job {job_id!r} in the topic {topic!r}.", title="Job not found")
        return job

    async def topics(self) -> dict[str, dict[str, int]]:
        """Every topic that holds jobs, with its jobs by status (every status, zeros too)."""
        return await run_in_threadpool(self._topics)

    async def summary(self, topic: str, limit: int) -> tuple[dict[str, int], list[Job]]:
        """The topic's jobs by status and its newest ``limit`` dead jobs (at most
        ``MAX_DEAD_LISTED``)."""
        return await run_in_threadpool(self._summary, topic, min(limit, MAX_DEAD_LISTED))

    async def retry(self, topic: str, job_id: str) -> Job:
        """Queue a dead job of the topic again; raises NotFound, or Conflict when the job is
        not dead."""
        return await run_in_threadpool(self._retry, topic, job_id)

    def _topics(self) -> dict[str, dict[str, int]]:
        with translate_errors(), self.db.read() as conn:
            found = self.store.topics(conn, self.space)
        return {topic: _all_statuses(counts) for topic, counts in sorted(found.items())}

    def _summary(self, topic: str, limit: int) -> tuple[dict[str, int], list[Job]]:
        with translate_errors(), self.db.read() as conn:
            counts = self.store.counts(conn, self.space, topic)
            dead = self.store.dead(conn, self.space, topic, limit)
        return _all_statuses(counts), dead

    def _retry(self, topic: str, job_id: str) -> Job:
        with translate_errors(), self.db.write() as conn:
            job = self._job_in(conn, topic, job_id)
            if not self.store.retry(conn, job, self.clock()):
                raise Conflict(f"The job is {job.status}: only a dead job can be retried.")
            retried = self.store.get(conn, self.space, job_id)
        assert retried is not None
        return retried


def _all_statuses(counts: dict[str, int]) -> dict[str, int]:
    return {status: counts.get(status, 0) for status in JOB_STATUSES}
