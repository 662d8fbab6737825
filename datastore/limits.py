"""Limits that both a service enforces and the published contract states (``/openapi.json``):
kept below both, so the contract reads them without importing a service."""

from __future__ import annotations

MAX_KEY_LENGTH = 1000
"""The longest key-value key."""
KEYSPACE_PATTERN = r"^[A-Za-z0-9_.\-]{0,200}$"
"""A key-value keyspace's name."""
MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000
"""The longest time-to-live of a key-value entry accepted: ten years."""
MAX_DEAD_LISTED = 100
"""Most dead jobs one ``GET /queue/{topic}`` lists (``limit``; default 20)."""
