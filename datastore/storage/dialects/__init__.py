"""Each backend's SQL for the compiler (``storage/compiler.py``)."""

from __future__ import annotations

from datastore.storage.dialects.base import Dialect
from datastore.storage.dialects.postgresql import PostgreSQL
from datastore.storage.dialects.sqlite import SQLite


def dialect_for(name: str) -> Dialect:
    """The compiler's view of a backend (``postgresql`` or ``sqlite``)."""
    return PostgreSQL() if name == "postgresql" else SQLite()
