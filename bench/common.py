"""Shared helpers of the benchmarks: databases, bulk loading, latency statistics.

Benchmarks run on demand (never in the test suite) and print numbers. PostgreSQL comes from
DATASTORE_BENCH_POSTGRES_URL (default postgres@127.0.0.1:5432); each run creates and drops its
own database.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datastore.clock import utc_now
from datastore.storage import migrate
from datastore.storage.engine import Database
from datastore.storage.tables import documents

ADMIN = os.environ.get(
    "DATASTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def database(backend: str) -> Iterator[Database]:
    """A fresh, migrated database of ``backend`` (postgresql or sqlite), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            db = Database(f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
            migrate.upgrade(db)
            try:
                yield db
            finally:
                db.dispose()
        return
    with fresh_database(ADMIN, "datastore_bench") as url:
        db = Database(url, pool_size=20)
        try:
            migrate.upgrade(db)
            yield db
        finally:
            db.dispose()


@contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (time zone UTC), dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET timezone TO 'UTC'")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def bulk_load(
    db: Database,
    space: str,
    collection: str,
    count: int,
    make: Callable[[int], dict[str, Any]],
    *,
    batch: int = 5000,
) -> None:
    """Insert ``count`` documents fast (multi-row inserts), ids ``d0000001``..."""
    now = utc_now()
    for start in range(0, count, batch):
        rows = [
            {
                "space": space,
                "collection": collection,
                "doc_id": f"d{n:07}",
                "body": make(n),
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for n in range(start, min(count, start + batch))
        ]
        with db.write() as conn:
            conn.execute(sa.insert(documents), rows)
    if db.is_postgresql:
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE documents"
            )


def measure(action: Callable[[], Any], *, runs: int, warmup: int = 5) -> dict[str, float]:
    """p50/p99/mean latency in milliseconds of ``action`` over ``runs`` calls."""
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "mean": statistics.fmean(samples),
    }


def table(title: str, rows: list[tuple[str, str, dict[str, float]]]) -> str:
    """A Markdown table of (scenario, backend, stats) rows."""
    lines = [f"### {title}", "", "| scenario | backend | p50 ms | p99 ms |", "|---|---|---|---|"]
    for scenario, backend, stats in rows:
        lines.append(f"| {scenario} | {backend} | {stats['p50']:.2f} | {stats['p99']:.2f} |")
    return "\n".join(lines)


def number_all_pending(conn: sa.Connection) -> None:
    """Run the change log's sequencer (PostgreSQL) until nothing is left unnumbered: one run
    numbers at most 10,000 changes per space."""
    while conn.exec_driver_sql("SELECT datastore_number_changes(NULL)").scalar():
        pass
