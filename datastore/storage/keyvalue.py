"""The key-value store: JSON values with an optional time-to-live, and atomic counters.

Expiry is exact at read time: every read compares ``expires_at`` with the current time, so an
expired key is invisible the moment it expires; ``purge_expired`` deletes such rows later (the
server runs it in the background). Increments are atomic: the row is created if missing
(``INSERT ... ON CONFLICT DO NOTHING``), then read ``FOR UPDATE`` (PostgreSQL; SQLite serialises
writers) and written back in the same transaction, so concurrent increments never lose one
another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastore.errors import Conflict, InvalidParam
from datastore.storage.dialects import dialect_of
from datastore.storage.tables import keyvalues as kv
from datastore.types import INT64_MAX, INT64_MIN, JSON

_MISSING = object()


@dataclass(frozen=True)
class Entry:
    """One stored key with its value and expiry."""

    key: str
    value: JSON
    expires_at: datetime | None


def _live(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(kv.c.expires_at.is_(None), kv.c.expires_at > now)


def _where(space: str, keyspace: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(kv.c.space == space, kv.c.keyspace == keyspace, kv.c.key == key)


class KeyValueStore:
    """Key-value operations of one space (each takes the caller's transaction)."""

    def get(
        self, conn: Connection, space: str, keyspace: str, key: str, now: datetime
    ) -> Entry | None:
        """The live entry, or None when missing or expired."""
        row = conn.execute(
            sa.select(kv.c.key, kv.c.value, kv.c.expires_at).where(
                _where(space, keyspace, key), _live(now)
            )
        ).first()
        return Entry(row.key, row.value, row.expires_at) if row is not None else None

    def set(
        self,
        conn: Connection,
        space: str,
        keyspace: str,
        key: str,
        value: JSON,
        now: datetime,
        expires_at: datetime | None,
    ) -> Entry:
        """Store ``value`` under ``key`` (replacing any value and expiry)."""
        statement = (
            dialect_of(conn)
            .insert(kv)
            .values(
                space=space,
                keyspace=keyspace,
                key=key,
                value=value,
                expires_at=expires_at,
                updated_at=now,
            )
        )
        statement = statement.on_conflict_do_update(
            index_elements=["space", "keyspace", "key"],
            set_={"value": value, "expires_at": expires_at, "updated_at": now},
        )
        conn.execute(statement)
        return Entry(key, value, expires_at)

    def delete(self, conn: Connection, space: str, keyspace: str, key: str, now: datetime) -> bool:
        """Delete the key; False when it was missing or already expired."""
        live = conn.execute(sa.delete(kv).where(_where(space, keyspace, key), _live(now)))
        if live.rowcount:
            return True
        conn.execute(sa.delete(kv).where(_where(space, keyspace, key)))
        return False

    def increment(
        self,
        conn: Connection,
        space: str,
        keyspace: str,
        key: str,
        delta: int | float,
        now: datetime,
    ) -> int | float:
        """Add ``delta`` to a numeric value (a missing or expired key starts at 0) and return
        the new value; raises Conflict when the stored value is not a number."""
        dialect = dialect_of(conn)
        insert = dialect.insert(kv).values(
            space=space, keyspace=keyspace, key=key, value=0, expires_at=None, updated_at=now
        )
        conn.execute(insert.on_conflict_do_nothing(index_elements=["space", "keyspace", "key"]))
        query = sa.select(kv.c.value, kv.c.expires_at).where(_where(space, keyspace, key))
        row = conn.execute(dialect.for_update(query)).one()
        current, expires_at = row.value, row.expires_at
        if expires_at is not None and expires_at <= now:
            current, expires_at = 0, None
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise Conflict(f"The value of {key!r} is not a number, so it cannot be incremented.")
        result = current + delta
        integral = isinstance(result, float) and result.is_integer() and isinstance(delta, int)
        if integral and INT64_MIN <= result <= INT64_MAX:
            result = int(result)
        in_range = isinstance(result, float) or INT64_MIN <= result <= INT64_MAX
        if not (math.isfinite(result) and in_range):
            raise Conflict(
                f"Adding {delta} to the value of {key!r} would leave the range of numbers that "
                "can be stored; nothing was changed.",
                invalid_params=[InvalidParam("value", "would make the stored number overflow")],
            )
        conn.execute(
            sa.update(kv)
            .where(_where(space, keyspace, key))
            .values(value=result, expires_at=expires_at, updated_at=now)
        )
        return result

    def list(
        self,
        conn: Connection,
        space: str,
        keyspace: str,
        prefix: str,
        now: datetime,
        *,
        limit: int,
    ) -> list[Entry]:
        """Live entries whose key starts with ``prefix``, in key order."""
        query = (
            sa.select(kv.c.key, kv.c.value, kv.c.expires_at)
            .where(
                kv.c.space == space,
                kv.c.keyspace == keyspace,
                kv.c.key.startswith(prefix, autoescape=True),
                _live(now),
            )
            .order_by(dialect_of(conn).collate(kv.c.key))
            .limit(limit)
        )
        return [Entry(r.key, r.value, r.expires_at) for r in conn.execute(query)]

    def purge_expired(self, conn: Connection, now: datetime) -> int:
        """Delete every expired row (all spaces); the number deleted."""
        result = conn.execute(sa.delete(kv).where(kv.c.expires_at <= now))
        return int(result.rowcount or 0)
