"""API keys: created and revoked with the CLI, presented as ``x-apikey``, stored hashed.

A key reads ``dsk_<id>_<secret>``: the id finds the row, the secret (32 random bytes) is checked
against its SHA-256 in constant time. A fast hash suffices because the secret is random, not a
password. Keys belong to one space; a key of another space does not authenticate.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from datastore.clock import utc_now
from datastore.storage.engine import Database
from datastore.storage.errors import translate_errors
from datastore.storage.tables import api_keys as t

PREFIX = "dsk"


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is known of a key (never the key itself)."""

    id: str
    space: str
    readonly: bool
    created_at: datetime
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> tuple[str, str, str]:
    """(public id, secret, the full key string)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{PREFIX}_{key_id}_{secret}"


def _split(presented: str) -> tuple[str, str] | None:
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(row.id, row.space, row.readonly, row.created_at, row.revoked_at)


class ApiKeyStore:
    """API keys of every space, with a short cache of successful look-ups."""

    CACHE_SECONDS = 5.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, ApiKeyInfo]] = {}

    def add(self, space: str, *, readonly: bool) -> tuple[ApiKeyInfo, str]:
        """Create a key; returns its info and the key itself (the only time it exists)."""
        key_id, secret, full = generate_key()
        now = utc_now()
        with translate_errors(), self.db.write() as conn:
            conn.execute(
                sa.insert(t).values(
                    id=key_id,
                    space=space,
                    key_hash=_hash(secret),
                    readonly=readonly,
                    created_at=now,
                )
            )
        return ApiKeyInfo(key_id, space, readonly, now, None), full

    def list(self, space: str | None = None) -> list[ApiKeyInfo]:
        """Keys (of one space, or all), oldest first."""
        query = sa.select(t.c.id, t.c.space, t.c.readonly, t.c.created_at, t.c.revoked_at)
        if space is not None:
            query = query.where(t.c.space == space)
        with translate_errors(), self.db.read() as conn:
            return [_info(row) for row in conn.execute(query.order_by(t.c.created_at, t.c.id))]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when there is no such (unrevoked) key."""
        with translate_errors(), self.db.write() as conn:
            result = conn.execute(
                sa.update(t)
                .where(t.c.id == key_id, t.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
        self._cache.clear()
        return bool(result.rowcount)

    def authenticate(self, space: str, presented: str) -> ApiKeyInfo | None:
        """The key's info when ``presented`` is a live key of ``space``; None otherwise."""
        parts = _split(presented)
        if parts is None:
            return None
        key_id, secret = parts
        cached = self._cache.get(presented)
        if cached is not None and time.monotonic() - cached[0] < self.CACHE_SECONDS:
            info = cached[1]
            return info if info.space == space else None
        with translate_errors(), self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    t.c.id, t.c.space, t.c.readonly, t.c.created_at, t.c.revoked_at, t.c.key_hash
                ).where(t.c.id == key_id)
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, _hash(secret)):
            return None
        info = ApiKeyInfo(row.id, row.space, row.readonly, row.created_at, row.revoked_at)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[presented] = (time.monotonic(), info)
        return info if info.space == space else None
