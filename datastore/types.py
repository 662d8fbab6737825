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
