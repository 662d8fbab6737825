"""The queue worker: claims jobs of its topics, runs their handlers, records the outcome.

A handler is a Python callable (``package.module:function``, called with the job's payload, and
with the ``Job`` too when it takes two arguments) or a webhook URL (the job is POSTed as JSON
``{"_id", "topic", "payload", "attempt"}``; any 2xx answer is success). A handler that raises,
or a webhook that fails, schedules a retry after an exponential backoff (1 s, 2 s, 4 s ... capped
at an hour); after ``max_attempts`` the job is dead. The job is claimed for a visibility timeout:
a worker killed mid-job loses the claim when it expires and another worker runs the job again
(at-least-once delivery, so handlers should be idempotent).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from datastore.clock import utc_now
from datastore.storage.engine import Database
from datastore.storage.errors import translate_errors
from datastore.storage.jobs import Job, JobStore

logger = logging.getLogger("datastore.worker")
JobHandler = Callable[[Job], None]
MAX_BACKOFF = timedelta(hours=1)


class HandlerError(ValueError):
    """A handler specification that cannot be loaded."""


def load_callable(spec: str) -> JobHandler:
    """``package.module:function`` → a job handler calling it; raises HandlerError."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise HandlerError(f"a handler must be given as package.module:function, got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise HandlerError(f"cannot load the handler {spec!r}: {exc}") from exc
    if not callable(target):
        raise HandlerError(f"the handler {spec!r} is not callable")
    try:
        takes_job = len(inspect.signature(target).parameters) >= 2
    except (TypeError, ValueError):
        takes_job = False

    def run(job: Job) -> None:
        if takes_job:
            target(job.payload, job)
        else:
            target(job.payload)

    return run


def webhook(url: str, *, timeout: float = 30.0) -> JobHandler:
    """A job handler that POSTs the job to ``url``; raises HandlerError for a non-HTTP URL."""
    if not url.startswith(("http://", "https://")):
        raise HandlerError(f"a webhook must be an http(s) URL, got {url!r}")

    def run(job: Job) -> None:
        body = {"_id": job.id, "topic": job.topic, "payload": job.payload, "attempt": job.attempts}
        response = httpx.post(url, json=body, timeout=timeout)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")

    return run


def backoff(attempt: int, base: timedelta = timedelta(seconds=1)) -> timedelta:
    """The wait before retrying after failed attempt number ``attempt`` (1-based)."""
    wait: timedelta = base * (2 ** max(attempt - 1, 0))
    return min(wait, MAX_BACKOFF)


@dataclass
class Worker:
    """Runs the handlers of some topics of one space."""

    db: Database
    space: str
    handlers: Mapping[str, JobHandler]
    visibility: timedelta = timedelta(minutes=5)
    poll_interval: float = 0.5
    backoff_base: timedelta = timedelta(seconds=1)
    clock: Callable[[], datetime] = utc_now
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )

    def __post_init__(self) -> None:
        self.store = JobStore()

    def claim(self) -> Job | None:
        """Claim the next due job of this worker's topics (None when there is none)."""
        with translate_errors(), self.db.write() as conn:
            return self.store.claim(
                conn,
                self.space,
                sorted(self.handlers),
                worker=self.name,
                now=self.clock(),
                visibility=self.visibility,
            )

    def run_once(self) -> Job | None:
        """Claim and process one job; returns it (None when the queue was empty)."""
        job = self.claim()
        if job is None:
            return None
        try:
            self.handlers[job.topic](job)
        except Exception as exc:  # noqa: BLE001 - a failing handler is the job's failure
            logger.warning("job %s (%s) failed: %s", job.id, job.topic, exc)
            error = f"{type(exc).__name__}: {exc}"
            with translate_errors(), self.db.write() as conn:
                self.store.fail(
                    conn,
                    job,
                    error,
                    worker=self.name,
                    now=self.clock(),
                    retry_in=backoff(job.attempts, self.backoff_base),
                )
            return job
        with translate_errors(), self.db.write() as conn:
            if not self.store.finish(conn, job, worker=self.name, now=self.clock()):
                logger.warning("job %s finished after its claim expired", job.id)
        return job

    def run(self, stop: threading.Event) -> int:
        """Process jobs until ``stop`` is set; returns how many were processed."""
        processed = 0
        while not stop.is_set():
            try:
                job = self.run_once()
            except Exception:
                logger.exception("the worker could not reach the database; retrying")
                stop.wait(max(self.poll_interval, 1.0))
                continue
            if job is None:
                stop.wait(self.poll_interval)
            else:
                processed += 1
        return processed
