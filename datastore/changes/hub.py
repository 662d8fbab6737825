"""The per-worker fan-out: one read of the log per wake-up, shared by every subscriber.

Each followed space has a ``SpaceLog``: the number of the last change read (``loaded``), the
most recent changes with the documents they left (a bounded buffer), and the wake-up of the
subscribers waiting on the space. A subscriber whose cursor is older than the buffer reads the
log itself (``service.ChangeService.backlog``).

Subscribers at one cursor share one ``Batch`` per collection until the next read of the log,
and its ``memo`` keeps what they would each compute alike (the HTTP layer's rendered events,
``http.changes.batch_bytes``): with 1,000 subscribers a change costs each of them a look-up,
not a rule evaluation. Waiting subscribers are woken ``WAKE_SLICE`` at a time, with a turn of
the event loop between slices, so the requests this worker serves meanwhile (writes) wait for
one slice, not for the whole fan-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datastore.concurrency import run_in_threadpool
from datastore.storage import changes as log
from datastore.storage.changes import LoggedChange
from datastore.storage.documents import StoredDocument
from datastore.storage.engine import Database

BUFFER = 1000
"""Recent changes kept in memory per followed space (between this and twice as many, with
their documents and rendered events: a few MB at most)."""
BATCH = 1000
"""Changes read from the log per statement."""
WAKE_SLICE = 50
"""Waiting subscribers woken per turn of the event loop."""


@dataclass(frozen=True)
class Delivery:
    """A change and the document it concerns: the stored document now for a creation or an
    update (None when it is gone since: its deletion follows), the deleted row for a
    deletion. ``memo`` keeps what every subscriber would compute alike (the document as its
    GET shows it), so the fan-out computes it once."""

    change: LoggedChange
    document: StoredDocument | None
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def seq(self) -> int:
        """The change's number (its cursor)."""
        return self.change.seq


@dataclass(frozen=True)
class Batch:
    """Changes of one collection after a cursor, and how far the log was examined
    (``through``: the cursor to continue from). ``memo``: what the subscribers that share
    this batch compute alike."""

    deliveries: list[Delivery]
    through: int
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


class SpaceLog:
    """The recent changes of one space in this worker, and the wake-up of its followers."""

    def __init__(self, loaded: int) -> None:
        self.loaded = loaded
        self.recent: list[Delivery] = []
        """Consecutive changes (numbers have no gaps within a space), oldest first."""
        self._slices: list[asyncio.Event] = [asyncio.Event()]
        self._in_last = 0
        self._picked: dict[tuple[int, str, int], Batch] = {}
        self._waking: set[asyncio.Task[None]] = set()

    def extend(self, deliveries: list[Delivery], *, skipped: bool = False) -> None:
        """Append changes read after ``loaded`` (``skipped``: not right after it, the older
        ones were left to the log) and wake every follower."""
        if not deliveries:
            return
        if skipped:
            self.recent.clear()
        self._picked.clear()
        self.recent.extend(deliveries)
        if len(self.recent) > 2 * BUFFER:
            del self.recent[: len(self.recent) - BUFFER]
        self.loaded = deliveries[-1].seq
        self.wake()

    def wake(self) -> None:
        """Wake every follower (new changes, or the server is closing), a slice per turn of
        the event loop."""
        slices, self._slices, self._in_last = self._slices, [asyncio.Event()], 0
        if len(slices) == 1:
            slices[0].set()
            return
        task = asyncio.get_running_loop().create_task(_set_in_turn(slices))
        self._waking.add(task)
        task.add_done_callback(self._waking.discard)

    def since(self, cursor: int) -> list[Delivery] | None:
        """The changes after ``cursor`` up to ``loaded`` (none when the cursor is at or past
        what this worker has read), or None when the buffer no longer holds all of them."""
        if cursor >= self.loaded:
            return []
        first = self.recent[0].seq if self.recent else self.loaded + 1
        if first > cursor + 1:
            return None
        start = cursor + 1 - first
        found = self.recent[start:]
        if found and found[0].seq != cursor + 1:  # numbers with a gap: find it the slow way
            return [d for d in self.recent if d.seq > cursor]
        return found

    def pick(self, cursor: int, collection: str, limit: int) -> Batch | None:
        """The changes of ``collection`` after ``cursor`` up to ``loaded`` (at most
        ``limit``), the same ``Batch`` for every subscriber that asks until the next read of
        the log; None when the buffer no longer holds all of them."""
        key = (cursor, collection, limit)
        found = self._picked.get(key)
        if found is None:
            recent = self.since(cursor)
            if recent is None:
                return None
            picked = [d for d in recent if d.change.collection == collection][:limit]
            through = picked[-1].seq if len(picked) == limit else max(cursor, self.loaded)
            found = self._picked[key] = Batch(picked, through)
        return found

    def moved(self) -> asyncio.Event:
        """Set once changes after ``loaded`` (as it is now) arrive (one event per slice of
        ``WAKE_SLICE`` waits)."""
        if self._in_last >= WAKE_SLICE:
            self._slices.append(asyncio.Event())
            self._in_last = 0
        self._in_last += 1
        return self._slices[-1]


async def _set_in_turn(slices: list[asyncio.Event]) -> None:
    for index, event in enumerate(slices):
        if index:
            await asyncio.sleep(0)  # what became ready meanwhile (a write) runs first
        event.set()


def load(db: Database, spaces: Mapping[str, int]) -> dict[str, tuple[list[Delivery], bool]]:
    """The changes of each space after its number in ``spaces``, with their documents, and
    whether older ones were skipped: at most the newest ``BUFFER`` are read (an import of a
    million documents stays in the log; followers that need them read it). Runs on a worker
    thread."""
    out: dict[str, tuple[list[Delivery], bool]] = {}
    with db.read() as conn:
        heads = log.heads(conn, spaces)
        for space, after in spaces.items():
            skipped = heads[space] - after > BUFFER
            after = max(after, heads[space] - BUFFER)
            found: list[Delivery] = []
            while after < heads[space]:
                batch = log.read(conn, space, after, BATCH, upto=heads[space], numbered=True)
                if not batch:
                    break
                found.extend(Delivery(*pair) for pair in log.with_documents(conn, space, batch))
                after = batch[-1].seq
            if found:
                out[space] = (found, skipped)
    return out


class ChangeHub:
    """The followed spaces of one event loop; ``refresh`` reads the log once for all."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.spaces: dict[str, SpaceLog] = {}
        self.streams = 0
        """Open event streams on this loop."""
        self.waiting = 0
        """Long polls waiting on this loop."""
        self._lock = asyncio.Lock()

    async def watch(self, space: str) -> SpaceLog:
        """The space's log, followed from its head now when it was not followed yet."""
        found = self.spaces.get(space)
        if found is not None:
            return found

        def current() -> int:
            with self.db.read() as conn:
                return log.head(conn, space).head

        loaded = await run_in_threadpool(current)
        return self.spaces.setdefault(space, SpaceLog(loaded))

    async def refresh(self) -> int:
        """Read what was written since the last refresh, for every followed space; how many
        changes."""
        async with self._lock:
            wanted = {space: feed.loaded for space, feed in self.spaces.items()}
            if not wanted:
                return 0
            loaded = await run_in_threadpool(load, self.db, wanted)
            for space, (deliveries, skipped) in loaded.items():
                self.spaces[space].extend(deliveries, skipped=skipped)
            return sum(len(deliveries) for deliveries, _ in loaded.values())
