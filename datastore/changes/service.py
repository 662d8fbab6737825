"""The change feed service: what the HTTP layer calls to follow a collection's changes.

One ``ChangeService`` per app (its database). Per event loop it keeps a ``ChangeHub`` and the
task that wakes it: on PostgreSQL one LISTEN connection (plus a read every
``FALLBACK_SECONDS``), on SQLite a read every ``changes_poll_ms``; that task runs while someone
follows the log on the loop, and stops after ``IDLE_SECONDS`` without a follower or when the
app's lifespan ends (``shutdown``). ``written`` hands this worker's writes to the loop's
``Sequencer`` (PostgreSQL). ``next_batch`` answers a subscriber from the hub's memory when it
can, else from the log (``backlog``). Retention runs every ``RETENTION_SECONDS`` in short
transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

from datastore.changes.hub import Batch, ChangeHub, Delivery
from datastore.changes.sequencer import Sequencer
from datastore.concurrency import run_in_threadpool
from datastore.config import Settings
from datastore.errors import Gone
from datastore.storage import changes as log
from datastore.storage.engine import Database

logger = logging.getLogger("datastore.changes")
COALESCE_SECONDS = 0.02
"""The least time between two reads of the log: under many writes, each read (and each
subscriber's wake-up and socket write) carries many changes."""
COALESCE_PER_STREAM = 0.0002
"""More time between fan-outs per open event stream: waking and writing to every stream costs
the worker 20-45 µs each (most of it the socket write) whatever the number of changes, so with
many streams fan-outs are spaced further (1,000 streams: 200 ms, at most 5 a second) and each
carries more changes; writes keep most of the worker (bench/changes.py). Only a read that
found changes is followed by this pause: a change after a quiet spell goes out at once."""
COALESCE_MAX_SECONDS = 0.2
FALLBACK_SECONDS = 1.0
"""PostgreSQL: how often the log is read (and numbered) without a notification: writes of a
server that does not run the sequencer (plain SQL, an older version), a lost connection."""
IDLE_SECONDS = 10.0
"""A loop's wake-up task (and its LISTEN connection) stops after this long without an open
stream or a waiting poll; the next follower starts it again."""
RETENTION_SECONDS = 60.0
"""How often retention runs."""
PRUNE_BATCH = 1000
"""Log rows deleted per transaction (short ones: pruning never holds up writes for long)."""


class _Loop:
    """What the service runs on one event loop: the hub and its wake-up task."""

    def __init__(self, hub: ChangeHub, poke: asyncio.Event) -> None:
        self.hub = hub
        self.poke = poke
        self.task: asyncio.Task[None] | None = None
        self.closing = asyncio.Event()
        self.last_used = time.monotonic()


class ChangeService:
    """Change feeds of the spaces of one database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._loops: dict[asyncio.AbstractEventLoop, _Loop] = {}
        self._sequencers: dict[asyncio.AbstractEventLoop, Sequencer] = {}
        self._served: set[asyncio.AbstractEventLoop] = set()
        """Loops inside the app's lifespan (``start``): their sequencer keeps a connection."""

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """The app's lifespan started on this loop."""
        self._served.add(asyncio.get_running_loop())

    def written(self) -> None:
        """A write of this worker committed: number it soon (PostgreSQL; never waits)."""
        if not self.db.backend.sequenced_changes:
            return
        loop = asyncio.get_running_loop()
        if loop not in self._served:  # may never run again: reads of the log number
            return
        found = self._sequencers.get(loop)
        if found is None:
            found = self._sequencers[loop] = Sequencer(self.db, self._numbered)
        found.written()

    def _numbered(self) -> None:
        """This worker numbered changes: wake its hub now (the NOTIFY comes back later)."""
        found = self._loops.get(asyncio.get_running_loop())
        if found is not None:
            found.poke.set()

    def _here(self) -> _Loop:
        loop = asyncio.get_running_loop()
        found = self._loops.get(loop)
        if found is None:
            hub = ChangeHub(self.db)
            poke = asyncio.Event()
            found = self._loops[loop] = _Loop(hub, poke)
        if found.task is None or found.task.done():  # not started, or stopped when nobody followed
            found.task = loop.create_task(self._follow(found))
        found.last_used = time.monotonic()
        return found

    async def _follow(self, here: _Loop) -> None:
        """Refresh the hub whenever poked, or every interval, while someone follows."""
        hub, poke = here.hub, here.poke
        waker = None
        if self.db.backend.notifications:
            interval = FALLBACK_SECONDS
            waker = asyncio.get_running_loop().create_task(self._listen(poke))
        else:
            interval = self.settings.changes_poll_ms / 1000
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poke.wait(), interval)
                poke.clear()
                if hub.streams or hub.waiting:
                    here.last_used = time.monotonic()
                elif time.monotonic() - here.last_used > IDLE_SECONDS:
                    hub.spaces.clear()  # followed again from the head when needed
                    return
                try:
                    found = await hub.refresh()
                except Exception:  # an outage: the next refresh retries
                    logger.warning("change log: refresh failed", exc_info=True)
                    await asyncio.sleep(interval)
                    continue
                if found:  # the next fan-out waits, and carries what came meanwhile
                    spacing = COALESCE_SECONDS + COALESCE_PER_STREAM * hub.streams
                    await asyncio.sleep(min(spacing, COALESCE_MAX_SECONDS))
        finally:
            if waker is not None:  # its LISTEN connection closed before this task ends
                waker.cancel()
                await asyncio.gather(waker, return_exceptions=True)

    async def _listen(self, poke: asyncio.Event) -> None:
        from datastore.storage.notifications import notifications

        async for _ in notifications(self.db):
            poke.set()

    def closing(self) -> asyncio.Event:
        """Set when the server shuts down: every stream ends."""
        return self._here().closing

    def close(self) -> None:
        """End every stream of this loop and stop following the log."""
        loop = asyncio.get_running_loop()
        found = self._loops.pop(loop, None)
        if found is not None:
            _closing(found)
            if found.task is not None:
                found.task.cancel()

    async def shutdown(self) -> None:
        """The app's lifespan ends on this loop: ``close``, and wait until the wake-up task,
        its LISTEN connection and the sequencer's connection are gone (before the database
        goes, a test's included)."""
        loop = asyncio.get_running_loop()
        found = self._loops.get(loop)
        self.close()
        self._served.discard(loop)
        sequencer = self._sequencers.pop(loop, None)
        if sequencer is not None:
            await sequencer.close()
        if found is not None and found.task is not None:
            await asyncio.gather(found.task, return_exceptions=True)

    def shut_down_soon(self) -> None:
        """From a signal handler: end the streams (their clients reconnect elsewhere)."""
        for loop, found in list(self._loops.items()):
            loop.call_soon_threadsafe(_closing, found)

    # -- reads -------------------------------------------------------------------------

    async def open(self, space: str, since: int | None) -> int:
        """Start following ``space``; the cursor to begin after: ``since`` when the log still
        holds every change after it, the head now without one; raises Gone."""
        here = self._here()
        await here.hub.watch(space)
        current = await run_in_threadpool(self._head, space)
        if since is None:
            return current.head
        if since < current.pruned_through or since > current.head:
            raise _gone(since, current)
        return since

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        """Count an open event stream (the reads of the log are spaced by their number)."""
        hub = self._here().hub
        hub.streams += 1
        try:
            yield
        finally:
            hub.streams -= 1

    def _head(self, space: str) -> log.Head:
        with self.db.read() as conn:
            return log.head(conn, space)

    async def next_batch(
        self,
        space: str,
        collection: str,
        cursor: int,
        limit: int,
        timeout: float,
        *,
        fresh: bool = False,
    ) -> Batch:
        """The changes of ``collection`` after ``cursor`` (at most ``limit``), waiting up to
        ``timeout`` seconds for a first one; raises Gone when the log lost some. ``fresh``:
        read the log itself first (what was committed a moment ago, which this worker's hub
        may not have read yet), as a request that comes in from outside does."""
        here = self._here()
        feed = here.hub.spaces.get(space) or await here.hub.watch(space)
        deadline = time.monotonic() + timeout
        if fresh:
            read = await self.backlog(space, collection, cursor, limit)
            if read.deliveries or timeout <= 0:
                return read
            cursor = read.through
        while True:
            found = feed.pick(cursor, collection, limit)
            if found is None:
                return await self.backlog(space, collection, cursor, limit)
            remaining = deadline - time.monotonic()
            if found.deliveries or remaining <= 0 or here.closing.is_set():
                return found
            cursor = found.through
            if here.task is None or here.task.done():  # stopped while idle: follow again
                self._here()
            here.hub.waiting += 1
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await feed.moved().wait()
            finally:
                here.hub.waiting -= 1

    async def backlog(self, space: str, collection: str, cursor: int, limit: int) -> Batch:
        """The changes after ``cursor`` read from the log itself; raises Gone."""
        return await run_in_threadpool(self._backlog, space, collection, cursor, limit)

    def _backlog(self, space: str, collection: str, cursor: int, limit: int) -> Batch:
        with self.db.read() as conn:
            upto = log.head(conn, space).head
            found = log.read(conn, space, cursor, limit, collection, upto=upto, numbered=True)
            pairs = log.with_documents(conn, space, found)
            after = log.head(conn, space, numbered=True)
        if cursor < after.pruned_through or cursor > after.head:
            raise _gone(cursor, after)
        deliveries = [Delivery(*pair) for pair in pairs]
        through = deliveries[-1].seq if len(deliveries) == limit else upto
        return Batch(deliveries, max(through, cursor))

    # -- retention ---------------------------------------------------------------------

    async def retain_forever(self) -> None:
        """Apply retention every ``RETENTION_SECONDS`` (the first time after one interval:
        a worker that starts and stops at once does no pruning)."""
        while True:
            await asyncio.sleep(RETENTION_SECONDS)
            try:
                await run_in_threadpool(self.prune)
            except Exception:  # logged; the next round retries
                logger.warning("change log: retention failed", exc_info=True)

    def prune(self, now_ms: int | None = None, spaces: list[str] | None = None) -> int:
        """Remove the changes past retention (age and count) in every space (or in
        ``spaces``); how many."""
        settings = self.settings
        if not settings.changes_retention_seconds and not settings.changes_retention_count:
            return 0
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        age = settings.changes_retention_seconds
        cutoff = now_ms - age * 1000 if age else 0
        if spaces is None:
            with self.db.read() as conn:
                spaces = log.spaces_with_changes(conn)
        return sum(self._prune_space(space, cutoff) for space in spaces)

    def _prune_space(self, space: str, cutoff_ms: int) -> int:
        """Raise the space's horizon, then delete what is below it in short transactions."""
        with self.db.read() as conn:
            before = log.head(conn, space).pruned_through
            bound = log.prune_bound(conn, space, cutoff_ms, self.settings.changes_retention_count)
            first = log.oldest(conn, space)
        if bound > before:
            with self.db.write() as conn:
                log.raise_horizon(conn, space, bound)
        removed = 0
        while first is not None and first <= bound:
            with self.db.write() as conn:
                count = log.delete_through(conn, space, bound, PRUNE_BATCH)
            removed += count
            first = first if count == PRUNE_BATCH else None
        return removed


def _gone(cursor: int, head: log.Head) -> Gone:
    if cursor > head.head:
        detail = (
            f"The cursor {cursor} is not from this change log (its last change is {head.head})."
        )
    else:
        detail = (
            f"The changes after {cursor} are no longer kept (the log starts after "
            f"{head.pruned_through}): read the collection again and follow from a new cursor."
        )
    return Gone(detail)


def _closing(found: _Loop) -> None:
    """Mark the loop's streams closing and wake every one of them."""
    found.closing.set()
    for feed in found.hub.spaces.values():
        feed.wake()
