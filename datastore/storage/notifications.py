"""PostgreSQL's wake-ups of the change log: one LISTEN connection per worker and event loop.

The sequencer (``datastore_number_changes``, migration 0008) NOTIFYs ``datastore_changes``
once per space it numbered, at its commit (payload: the space's new head; the data is read
from the log); writing transactions send nothing. ``notifications`` yields once
per notification; if the connection drops it reconnects and yields once, since notifications
sent meanwhile are lost and the log must be read anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import sqlalchemy as sa

from datastore.storage.changes import CHANNEL
from datastore.storage.engine import Database

logger = logging.getLogger("datastore.changes")
RECONNECT_SECONDS = 1.0


def conninfo(db: Database) -> str:
    """The libpq connection string of ``db`` (a PostgreSQL database)."""
    return sa.make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)


async def notifications(db: Database) -> AsyncIterator[None]:
    """One item per NOTIFY on the change channel, forever (reconnecting after a failure)."""
    while True:
        try:
            conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
                conninfo(db), autocommit=True
            )
        except psycopg.Error as exc:
            logger.warning("change notifications: cannot connect (%s); retrying", exc)
            await asyncio.sleep(RECONNECT_SECONDS)
            continue
        try:
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                yield  # anything written before LISTEN took effect is read now
                async for _ in conn.notifies():
                    yield
        except psycopg.Error as exc:
            logger.warning("change notifications: connection lost (%s); reconnecting", exc)
            await asyncio.sleep(RECONNECT_SECONDS)
