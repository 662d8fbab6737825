"""Type aliases shared by every stage."""

from __future__ import annotations

from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""Any JSON value as decoded by orjson."""

JSONObject: TypeAlias = dict[str, Any]
"""A JSON object."""

Document: TypeAlias = dict[str, Any]
"""A document body (a JSON object)."""

DocumentId: TypeAlias = str
"""A document id: an opaque string."""

CollectionPath: TypeAlias = str
"""A collection path without leading slash, e.g. ``users/u1/events``."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""Integers are stored exactly only within the signed 64-bit range (orjson, SQLite); a body
with an integer outside it is refused rather than silently rounded to a float."""

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
JOB_STATUSES = (QUEUED, RUNNING, DONE, DEAD)
"""The states of a queued job: waiting (again after a failed attempt), claimed by a worker,
finished, or failed for the last time."""
