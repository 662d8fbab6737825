"""Key-value operations of one space, one transaction each: get, set with TTL, delete,
increment / decrement, list by prefix; plus the background purge of expired keys."""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from datastore.clock import utc_now
from datastore.concurrency import run_in_threadpool
from datastore.errors import BadRequest, InvalidParam, NotFound
from datastore.limits import KEYSPACE_PATTERN, MAX_KEY_LENGTH, MAX_TTL_MS
from datastore.storage.engine import Database
from datastore.storage.errors import retry_conflicts, translate_errors
from datastore.storage.keyvalue import Entry, KeyValueStore
from datastore.types import JSON

logger = logging.getLogger("datastore.keyvalue")

_KEYSPACE = re.compile(KEYSPACE_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_ttl(raw: str | None) -> int | None:
    """The ``ttl`` query parameter in milliseconds; raises BadRequest unless it is a whole
    number from 1 to ten years."""
    if raw is None:
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1 or int(text) > MAX_TTL_MS:
        raise BadRequest(
            "The time-to-live is not valid.",
            invalid_params=[
                InvalidParam(
                    "ttl", f"must be a whole number of milliseconds from 1 to {MAX_TTL_MS}"
                )
            ],
        )
    return int(text)


def check_keyspace(raw: str | None) -> str:
    """The ``keyspace`` query parameter ('' when absent); raises BadRequest when malformed."""
    if raw is None:
        return ""
    if not _KEYSPACE.fullmatch(raw):
        raise BadRequest(
            invalid_params=[
                InvalidParam("keyspace", "may hold letters, digits, '_', '-' and '.' (200 at most)")
            ]
        )
    return raw


def check_key(key: str) -> str:
    """``key`` if it may be a key; raises BadRequest otherwise."""
    if not key or len(key) > MAX_KEY_LENGTH or _CONTROL.search(key):
        raise BadRequest(
            invalid_params=[
                InvalidParam(
                    "key", f"must be 1 to {MAX_KEY_LENGTH} characters, without control characters"
                )
            ]
        )
    return key


class KeyValueService:
    """The key-value store of one space."""

    def __init__(
        self, db: Database, space: str, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.db = db
        self.space = space
        self.store = KeyValueStore()
        self.clock = clock

    async def get(self, keyspace: str, key: str) -> Entry:
        """The live entry; raises NotFound when missing or expired."""
        entry = await run_in_threadpool(self._get, keyspace, key)
        if entry is None:
            raise NotFound(f"No value is stored under {key!r}.", title="Key not found")
        return entry

    async def set(self, keyspace: str, key: str, value: JSON, ttl_ms: int | None) -> Entry:
        """Store a value, expiring ``ttl_ms`` milliseconds from now when given."""
        return await run_in_threadpool(self._set, keyspace, key, value, ttl_ms)

    async def delete(self, keyspace: str, key: str) -> None:
        """Delete a key; raises NotFound when it was missing or expired."""
        if not await run_in_threadpool(self._delete, keyspace, key):
            raise NotFound(f"No value is stored under {key!r}.", title="Key not found")

    async def increment(self, keyspace: str, key: str, delta: int | float) -> int | float:
        """Add ``delta`` atomically and return the new value."""
        return await run_in_threadpool(self._increment, keyspace, key, delta)

    async def list(self, keyspace: str, prefix: str, limit: int) -> list[Entry]:
        """Live entries whose key starts with ``prefix``."""
        return await run_in_threadpool(self._list, keyspace, prefix, limit)

    # -- transactions (on a worker thread) -------------------------------------------------

    def _get(self, keyspace: str, key: str) -> Entry | None:
        with translate_errors(), self.db.read() as conn:
            return self.store.get(conn, self.space, keyspace, key, self.clock())

    def _set(self, keyspace: str, key: str, value: JSON, ttl_ms: int | None) -> Entry:
        now = self.clock()
        expires = now + timedelta(milliseconds=ttl_ms) if ttl_ms is not None else None
        with translate_errors(), self.db.write() as conn:
            return self.store.set(conn, self.space, keyspace, key, value, now, expires)

    def _delete(self, keyspace: str, key: str) -> bool:
        with translate_errors(), self.db.write() as conn:
            return self.store.delete(conn, self.space, keyspace, key, self.clock())

    @retry_conflicts
    def _increment(self, keyspace: str, key: str, delta: int | float) -> int | float:
        with translate_errors(), self.db.write() as conn:
            return self.store.increment(conn, self.space, keyspace, key, delta, self.clock())

    def _list(self, keyspace: str, prefix: str, limit: int) -> builtins.list[Entry]:
        with translate_errors(), self.db.read() as conn:
            return self.store.list(conn, self.space, keyspace, prefix, self.clock(), limit=limit)


def purge_expired(db: Database) -> int:
    """Delete expired keys of every space; the number deleted."""
    with translate_errors(), db.write() as conn:
        return KeyValueStore().purge_expired(conn, utc_now())


async def purge_forever(db: Database, every_seconds: float = 60.0) -> None:
    """Purge expired keys every ``every_seconds`` until cancelled."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            removed = await asyncio.to_thread(purge_expired, db)
        except Exception:
            logger.warning("purging expired keys failed", exc_info=True)
            continue
        if removed:
            logger.info("purged %d expired keys", removed)
