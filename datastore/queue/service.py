"""Queue operations of one space: enqueue a job, read its status (one transaction each;
async at the surface, run on a worker thread)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from datastore.clock import format_datetime, utc_now
from datastore.concurrency import run_in_threadpool
from datastore.errors import NotFound
from datastore.ids import check_collection_name, generate_id
from datastore.storage.engine import Database
from datastore.storage.errors import translate_errors
from datastore.storage.jobs import Job, JobStore
from datastore.types import JSON


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
            job = self.store.get(conn, self.space, job_id)
        if job is None or job.topic != topic:
            raise NotFound(f"No job {job_id!r} in the topic {topic!r}.", title="Job not found")
        return job
