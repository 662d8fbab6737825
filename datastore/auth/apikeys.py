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

from datastore.clock import utc_now
from datastore.concurrency import run_in_threadpool
from datastore.storage.api_keys import (
    StoredKey,
    insert_key,
    revoke_key,
    stored_key,
    stored_keys,
)
from datastore.storage.engine import Database
from datastore.storage.errors import translate_errors

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


def _info(key: StoredKey) -> ApiKeyInfo:
    return ApiKeyInfo(key.id, key.space, key.readonly, key.created_at, key.revoked_at)


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
            insert_key(conn, key_id, space, _hash(secret), readonly=readonly, now=now)
        return ApiKeyInfo(key_id, space, readonly, now, None), full

    def list(self, space: str | None = None) -> list[ApiKeyInfo]:
        """Keys (of one space, or all), oldest first."""
        with translate_errors(), self.db.read() as conn:
            return [_info(key) for key in stored_keys(conn, space)]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when there is no such (unrevoked) key."""
        with translate_errors(), self.db.write() as conn:
            revoked = revoke_key(conn, key_id, utc_now())
        self._cache.clear()
        return revoked

    def _remembered(self, space: str, presented: str) -> tuple[bool, ApiKeyInfo | None]:
        """(whether ``presented`` was checked in the last ``CACHE_SECONDS``, its answer)."""
        cached = self._cache.get(presented)
        if cached is None or time.monotonic() - cached[0] >= self.CACHE_SECONDS:
            return False, None
        return True, cached[1] if cached[1].space == space else None

    def authenticate(self, space: str, presented: str) -> ApiKeyInfo | None:
        """The key's info when ``presented`` is a live key of ``space``; None otherwise."""
        parts = _split(presented)
        if parts is None:
            return None
        known, info = self._remembered(space, presented)
        if known:
            return info
        key_id, secret = parts
        with translate_errors(), self.db.read() as conn:
            key = stored_key(conn, key_id)
        if key is None or key.revoked_at is not None:
            return None
        if not hmac.compare_digest(key.key_hash, _hash(secret)):
            return None
        found = _info(key)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[presented] = (time.monotonic(), found)
        return found if found.space == space else None

    async def admit(self, space: str, presented: str) -> ApiKeyInfo | None:
        """``authenticate`` for a request: a key checked in the last seconds is answered from
        memory, on the event loop; otherwise the database is asked on a worker thread."""
        known, info = self._remembered(space, presented)
        if known or _split(presented) is None:
            return info
        return await run_in_threadpool(self.authenticate, space, presented)
