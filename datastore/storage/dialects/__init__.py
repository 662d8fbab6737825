"""Each backend's SQL: for the compiler (``storage/compiler.py``) and for the stores."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from datastore.storage.dialects.base import Dialect
from datastore.storage.dialects.postgresql import PostgreSQL
from datastore.storage.dialects.sqlite import SQLite

_POSTGRESQL, _SQLITE = PostgreSQL(), SQLite()
DIALECTS: tuple[Dialect, ...] = (_POSTGRESQL, _SQLITE)


def dialect_for(name: str) -> Dialect:
    """The backend called ``name`` (``postgresql`` or ``sqlite``)."""
    return _POSTGRESQL if name == "postgresql" else _SQLITE


def dialect_of(conn: Connection) -> Dialect:
    """The backend ``conn`` talks to."""
    return dialect_for(conn.dialect.name)
