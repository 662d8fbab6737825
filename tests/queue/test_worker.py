"""Queues: enqueue → claim → done, retries with backoff, dead letters, visibility timeouts,
competing workers, webhooks; on both backends where it applies."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from datastore.queue.service import QueueService
from datastore.storage.engine import Database
from datastore.storage.jobs import Job
from datastore.types import DEAD, DONE, QUEUED, RUNNING
from datastore.worker import HandlerError, Worker, backoff, load_callable, webhook
from tests.conftest import pooler_of

pytestmark = pytest.mark.citus_audit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.mark.pgbouncer
def test_enqueue_process_done(database: Database, space: str, tmp_path: Path) -> None:
    queue = QueueService(database, space)
    out = tmp_path / "out.txt"
    job = asyncio.run(queue.enqueue("emails", {"file": str(out), "n": 1}))
    assert (job.status, job.attempts) == (QUEUED, 0)
    worker = Worker(database, space, {"emails": load_callable("tests.queue.handlers:record")})
    assert worker.run_once() is not None
    assert worker.run_once() is None
    assert out.read_text() == "1\n"
    done = asyncio.run(queue.get("emails", job.id))
    assert (done.status, done.attempts, done.last_error) == (DONE, 1, None)
    assert done.finished_at is not None


def test_retries_with_backoff_then_dead_letter(database: Database, space: str) -> None:
    clock = Clock()
    queue = QueueService(database, space, max_attempts=3, clock=clock)
    job = asyncio.run(queue.enqueue("t", {"x": 1}))
    worker = Worker(
        database, space, {"t": load_callable("tests.queue.handlers:always_fails")}, clock=clock
    )
    assert worker.run_once() is not None
    failed = asyncio.run(queue.get("t", job.id))
    assert (failed.status, failed.attempts) == (QUEUED, 1)
    assert failed.last_error == "ValueError: this handler always fails"
    assert failed.run_at == clock.now + timedelta(seconds=1)
    assert worker.run_once() is None  # not due yet
    clock.advance(seconds=1)
    assert worker.run_once() is not None
    assert asyncio.run(queue.get("t", job.id)).run_at == clock.now + timedelta(seconds=2)
    clock.advance(seconds=2)
    worker.run_once()
    dead = asyncio.run(queue.get("t", job.id))
    assert (dead.status, dead.attempts) == (DEAD, 3)
    clock.advance(hours=2)
    assert worker.run_once() is None


@pytest.mark.pgbouncer
def test_visibility_timeout_returns_a_job(database: Database, space: str) -> None:
    clock = Clock()
    queue = QueueService(database, space, max_attempts=2, clock=clock)
    job = asyncio.run(queue.enqueue("t", {}))
    first = Worker(database, space, {"t": lambda j: None}, clock=clock, name="first")
    claimed = first.claim()  # claimed, then the worker "dies"
    assert claimed is not None
    assert asyncio.run(queue.get("t", job.id)).status == RUNNING
    second = Worker(database, space, {"t": lambda j: None}, clock=clock, name="second")
    assert second.claim() is None  # still claimed
    clock.advance(minutes=6)
    again = second.run_once()
    assert again is not None
    assert again.attempts == 2
    assert asyncio.run(queue.get("t", job.id)).status == DONE
    # The first worker's late report does not overwrite the outcome.
    with database.write() as conn:
        assert not first.store.finish(conn, claimed, worker="first", now=clock.now)


def test_claim_expired_after_last_attempt_is_dead(database: Database, space: str) -> None:
    clock = Clock()
    queue = QueueService(database, space, max_attempts=1, clock=clock)
    job = asyncio.run(queue.enqueue("t", {}))
    worker = Worker(database, space, {"t": lambda j: None}, clock=clock)
    assert worker.claim() is not None
    clock.advance(minutes=10)
    assert worker.claim() is None
    dead = asyncio.run(queue.get("t", job.id))
    assert dead.status == DEAD
    assert "visibility timeout" in (dead.last_error or "")


def test_topics_and_spaces_are_separate(database: Database, space: str) -> None:
    asyncio.run(QueueService(database, space).enqueue("a", {}))
    asyncio.run(QueueService(database, space + "x").enqueue("b", {}))
    seen: list[str] = []
    worker = Worker(database, space, {"b": lambda j: seen.append(j.topic)})
    assert worker.run_once() is None
    assert seen == []


@pytest.mark.pgbouncer
def test_two_workers_share_a_topic_without_duplicates(database: Database, space: str) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite supports one worker process; competing workers need PostgreSQL")
    queue = QueueService(database, space)
    count = 200 if database.pooler else 1000  # behind PgBouncer: the same race, fewer jobs
    ids = {asyncio.run(queue.enqueue("t", {"n": n})).id for n in range(count)}
    seen: list[str] = []
    lock = threading.Lock()

    def handle(job: Job) -> None:
        with lock:
            seen.append(job.id)

    workers = [Worker(database, space, {"t": handle}, poll_interval=0.01) for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while len(seen) < count and datetime.now(UTC) < deadline:
        stop.wait(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(seen) == count
    assert set(seen) == ids


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(40) == timedelta(hours=1)


@pytest.mark.parametrize("spec", ["nomodule", "no.such.module:f", "json:nope", "json:__doc__"])
def test_bad_handler_specs(spec: str) -> None:
    with pytest.raises(HandlerError):
        load_callable(spec)


def test_webhook_handler(database: Database, space: str) -> None:
    received: list[dict[str, Any]] = []
    answers = iter([500, 200])

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(next(answers))
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        clock = Clock()
        queue = QueueService(database, space, clock=clock)
        job = asyncio.run(queue.enqueue("hooks", {"hello": "world"}))
        url = f"http://127.0.0.1:{server.server_port}/hook"
        worker = Worker(database, space, {"hooks": webhook(url)}, clock=clock)
        worker.run_once()
        assert asyncio.run(queue.get("hooks", job.id)).status == QUEUED
        assert "webhook answered 500" in (asyncio.run(queue.get("hooks", job.id)).last_error or "")
        clock.advance(seconds=5)
        worker.run_once()
        assert asyncio.run(queue.get("hooks", job.id)).status == DONE
    finally:
        server.shutdown()
        server.server_close()
    assert received[1] == {
        "_id": job.id,
        "topic": "hooks",
        "payload": {"hello": "world"},
        "attempt": 2,
    }
    with pytest.raises(HandlerError):
        webhook("ftp://nope")


@pytest.mark.pgbouncer
def test_a_killed_worker_does_not_lose_its_job(
    database: Database, database_url: str, space: str, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out.txt"
    job = asyncio.run(
        QueueService(database, space).enqueue("slow", {"file": str(out), "n": 7, "seconds": 60})
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datastore.cli",
            "worker",
            "blueprints/codehooks.yaml",
            "--handler",
            "slow=tests.queue.handlers:slow_record",
            "--space",
            space,
            "--visibility-timeout",
            "1",
            "--poll-interval",
            "0.1",
        ],
        cwd=root,
        env={
            **os.environ,
            "PYTHONPATH": str(root),
            "DATASTORE_DATABASE_URL": database_url,
            "DATASTORE_DATABASE_POOLER": pooler_of(database_url),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        started = Path(str(out) + ".started")
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the worker never started the job"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert asyncio.run(QueueService(database, space).get("slow", job.id)).status == RUNNING
    time.sleep(1.2)  # the claim expires
    rescue = Worker(database, space, {"slow": load_callable("tests.queue.handlers:record")})
    assert rescue.run_once() is not None
    assert out.read_text() == "7\n"
    done = asyncio.run(QueueService(database, space).get("slow", job.id))
    assert (done.status, done.attempts) == (DONE, 2)
