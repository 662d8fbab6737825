"""The blueprints each space was served with: one row per distinct blueprint (by hash).

Recording is cheap when nothing changed (one indexed read). When the blueprint differs from
the one last served, the change is recorded under a per-space lock (a transaction-level
advisory lock on PostgreSQL, the single writer on SQLite) with an insert-if-absent by hash, so
several workers starting at once record it once, and exactly one of them learns what was
served before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastore.storage.dialects import dialect_of
from datastore.storage.dialects.base import lock_key
from datastore.storage.engine import Database
from datastore.storage.tables import served_blueprints as t


@dataclass(frozen=True)
class ServedRecord:
    """One blueprint a space was served with."""

    space: str
    hash: str
    text: str
    first_served_at: datetime
    last_served_at: datetime


def blueprint_hash(text: str) -> str:
    """The SHA-256 (hex) a blueprint text is recorded under."""
    return hashlib.sha256(text.encode()).hexdigest()


def _last(conn: Connection, space: str) -> ServedRecord | None:
    row = conn.execute(
        sa.select(t.c.space, t.c.hash, t.c.text, t.c.first_served_at, t.c.last_served_at)
        .where(t.c.space == space)
        .order_by(t.c.last_served_at.desc())
        .limit(1)
    ).first()
    return ServedRecord(*row) if row is not None else None


class ServedBlueprints:
    """Reading and recording the served blueprints of a database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def last(self, space: str) -> ServedRecord | None:
        """The blueprint the space was last served with (None when never recorded)."""
        with self.db.read() as conn:
            return _last(conn, space)

    def record(self, space: str, text: str, now: datetime) -> tuple[bool, ServedRecord | None]:
        """Record ``text`` as the space's served blueprint: (whether this call recorded a
        change, the blueprint served before it — None when there was none). The new one is
        the last served even when ``now`` is behind the recorded times (another server's
        clock)."""
        digest = blueprint_hash(text)
        last = self.last(space)
        if last is not None and last.hash == digest:
            return False, last
        with self.db.write() as conn:
            dialect = dialect_of(conn)
            dialect.lock_transaction(conn, lock_key(b"served:" + space.encode()))
            last = _last(conn, space)
            if last is not None and last.hash == digest:
                return False, last  # another worker recorded it first
            if last is not None and now <= last.last_served_at:
                now = last.last_served_at + timedelta(microseconds=1)  # clocks may disagree
            insert = dialect.insert(t)
            conn.execute(
                insert.values(
                    space=space, hash=digest, text=text, first_served_at=now, last_served_at=now
                ).on_conflict_do_nothing()
            )
            conn.execute(
                sa.update(t)
                .where(t.c.space == space, t.c.hash == digest)
                .values(last_served_at=now)
            )
        return True, last
