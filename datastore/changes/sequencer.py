"""Numbering this worker's writes soon after they commit (PostgreSQL).

Writers only append to the change log; the sequencer (``datastore_number_changes``, migration
0008) numbers what has committed. A worker that has just answered a write calls ``written``:
at most one run is in flight per event loop, and a write answered during a run asks for one
more after it, so under load each run numbers many writes (one short transaction, one commit,
one NOTIFY) and writers never wait for it. Reads of the log number first as well
(``storage.changes.read``), so writes of other servers or of plain SQL are never stuck.

Runs use one autocommit connection of their own per event loop (a statement on psycopg's
async driver: no worker thread), opened at the first write and reopened after a failure, closed
when the app's lifespan ends. A loop outside the app's lifespan (a test driving the app with
``asyncio.run``), which may never run again, has no sequencer: reads of the log number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from datastore.storage.engine import Database
from datastore.storage.notifications import conninfo
from datastore.storage.pooler import TRANSACTION_POOLER

logger = logging.getLogger("datastore.changes")

RUN_LIMIT = 10000
"""What one run numbers per space at most (migration 0008)."""
SPACING_SECONDS = 0.05
"""The least time between two runs: under a stream of writes each run numbers more of them
(and the database commits fewer sequencer transactions), for at most 50 ms of latency. With
runs 2 ms apart, the datastore's POST ran at 0.63 of the floor's and PATCH at 0.57 (bench.http,
2 workers, quiet machine); 20 ms: 0.77 and 0.60-0.65; 50 ms: 0.78-0.81 and 0.68-0.74. A write
after a quiet spell is numbered at once."""


class Sequencer:
    """The sequencer runs of one event loop; ``numbered`` is called after a run that numbered
    something (to wake this worker's subscribers at once, before the NOTIFY comes back)."""

    def __init__(self, db: Database, numbered: Callable[[], None]) -> None:
        self.db = db
        self.numbered = numbered
        self._again = False
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def written(self) -> None:
        """A write of this worker committed: number it soon (never waits)."""
        self._again = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._again:
                self._again = False
                try:
                    count = await self._number()
                except Exception:  # an outage: reads and the hub's timer number later
                    logger.warning("change log: numbering failed", exc_info=True)
                    await self._drop()
                    return
                if count:
                    self.numbered()
                if count >= RUN_LIMIT:  # a large import: more to number
                    self._again = True
                await asyncio.sleep(SPACING_SECONDS)
        finally:
            self._task = None

    async def _number(self) -> int:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                conninfo(self.db),
                autocommit=True,
                prepare_threshold=None if self.db.pooler == TRANSACTION_POOLER else 0,
            )
        cursor = await self._conn.execute("SELECT datastore_number_changes(NULL)")
        row = await cursor.fetchone()
        return int(row[0] or 0) if row else 0

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken
                await conn.close()

    async def close(self) -> None:
        """Stop: cancel a run in flight and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        await self._drop()
