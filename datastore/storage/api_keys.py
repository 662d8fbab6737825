"""The ``api_keys`` table: rows of the keys ``auth/apikeys.py`` makes, checks and revokes.

A row holds the key's public id, its space, whether it may only read, when it was made and
revoked, and the SHA-256 of its secret (never the secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastore.storage.tables import api_keys as t


@dataclass(frozen=True)
class StoredKey:
    """One row of ``api_keys``."""

    id: str
    space: str
    readonly: bool
    created_at: datetime
    revoked_at: datetime | None
    key_hash: str


_COLUMNS = (t.c.id, t.c.space, t.c.readonly, t.c.created_at, t.c.revoked_at, t.c.key_hash)


def _stored(row: Any) -> StoredKey:
    return StoredKey(row.id, row.space, row.readonly, row.created_at, row.revoked_at, row.key_hash)


def insert_key(
    conn: Connection, key_id: str, space: str, key_hash: str, *, readonly: bool, now: datetime
) -> None:
    """Store a new key."""
    conn.execute(
        sa.insert(t).values(
            id=key_id, space=space, key_hash=key_hash, readonly=readonly, created_at=now
        )
    )


def stored_keys(conn: Connection, space: str | None) -> list[StoredKey]:
    """The keys of ``space`` (every space's when None), oldest first."""
    query = sa.select(*_COLUMNS)
    if space is not None:
        query = query.where(t.c.space == space)
    return [_stored(row) for row in conn.execute(query.order_by(t.c.created_at, t.c.id))]


def stored_key(conn: Connection, key_id: str) -> StoredKey | None:
    """The key with this public id, revoked or not."""
    row = conn.execute(sa.select(*_COLUMNS).where(t.c.id == key_id)).first()
    return _stored(row) if row is not None else None


def revoke_key(conn: Connection, key_id: str, now: datetime) -> bool:
    """Mark a key revoked; False when there is no such unrevoked key."""
    result = conn.execute(
        sa.update(t).where(t.c.id == key_id, t.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)
