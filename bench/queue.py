"""Queue throughput on PostgreSQL: jobs per second through enqueue → worker → done with 1, 2
and 4 worker threads (each its own Worker and connections; SKIP LOCKED shares the topic).

    python -m bench.queue [--jobs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from bench.common import database
from datastore.queue.service import QueueService
from datastore.types import DONE
from datastore.worker import Worker


async def _enqueue(queue: QueueService, jobs: int) -> None:
    for n in range(jobs):
        await queue.enqueue("work", {"n": n})


def run(workers: int, jobs: int) -> tuple[float, float]:
    with database("postgresql") as db:
        queue = QueueService(db, "bench")
        start = time.perf_counter()
        asyncio.run(_enqueue(queue, jobs))
        enqueue_rate = jobs / (time.perf_counter() - start)
        done = threading.Semaphore(0)
        stop = threading.Event()
        pool = [
            Worker(db, "bench", {"work": lambda job: done.release()}, poll_interval=0.01)
            for _ in range(workers)
        ]
        threads = [threading.Thread(target=w.run, args=(stop,)) for w in pool]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for _ in range(jobs):
            done.acquire()
        elapsed = time.perf_counter() - start
        stop.set()
        for thread in threads:
            thread.join()
        with db.read() as conn:
            counts = queue.store.counts(conn, "bench", "work")
        assert counts.get(DONE) == jobs, counts
        return enqueue_rate, jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    print("| workers | enqueue jobs/s | processed jobs/s |\n|---|---|---|")
    for workers in (1, 2, 4):
        enqueue, processed = run(workers, args.jobs)
        print(f"| {workers} | {enqueue:,.0f} | {processed:,.0f} |")


if __name__ == "__main__":
    main()
