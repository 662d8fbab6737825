"""Reads from a streaming read replica (``read_database``), with read-your-writes.

A request that may read from the replica (the HTTP layer's ``reading_from_replica``: GETs)
carries a consistency token, or none: the primary's WAL position (LSN) after the client's
last write, which every write response hands out (``current_lsn``). ``Database.read()``
takes a replica connection only when the replica has replayed that far, waiting up to
``WAIT_SECONDS`` for it; when it lags longer, or cannot be reached, the read goes to the
primary (an unreachable replica is left alone for ``DOWN_SECONDS``). A token past the
primary's own position was not handed out by it (forged, or from another database): it is
not waited for, so it cannot hold a replica connection and a worker thread for
``WAIT_SECONDS`` each time it is sent; its reads go to the primary at once. Transactions
(``Database.write()``), and everything outside such a request, stay on the primary.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

WAIT_SECONDS = 0.5
"""How long a read waits for the replica to replay a client's token before taking the
primary."""
DOWN_SECONDS = 5.0
"""How long an unreachable replica is left alone before it is tried again."""
POLL_SECONDS = 0.01
CONNECT_TIMEOUT_SECONDS = 2
LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
"""A PostgreSQL WAL position as ``pg_current_wal_lsn()::text`` prints it."""


@dataclass(frozen=True)
class Route:
    """A read that may go to the replica: ``token`` is the WAL position it must see (None:
    whatever the replica has)."""

    token: str | None


ROUTE: ContextVar[Route | None] = ContextVar("datastore_read_route", default=None)
"""Set by the HTTP layer for requests whose reads may go to the replica."""


def token_of(raw: str | None) -> str | None:
    """The token a client sent, when it is a WAL position (others are ignored)."""
    if raw is None:
        return None
    raw = raw.strip().upper()
    return raw if LSN.fullmatch(raw) else None


@contextmanager
def reading_from_replica(raw_token: str | None, *, readable: bool = True) -> Iterator[None]:
    """Within: reads may go to the replica, once it has replayed ``raw_token``. A token that
    is present but not a WAL position sends the reads to the primary."""
    token = token_of(raw_token)
    if raw_token is not None and token is None:
        readable = False
    reset = ROUTE.set(Route(token) if readable else None)
    try:
        yield
    finally:
        ROUTE.reset(reset)


def lsn_number(token: str) -> int:
    """A WAL position as one number (``16/B374D848`` → ``0x16B374D848``), to compare."""
    high, _, low = token.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def current_lsn(conn: Connection) -> str:
    """The primary's WAL insert position now: past the commit record of every transaction
    committed before (also under ``synchronous_commit = off``, where the write position
    ``pg_current_wal_lsn()`` may not be yet)."""
    return str(conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()::text").scalar_one())


class Replica:
    """The replica's engine (autocommit reads) and whether it may serve a read now."""

    def __init__(self, url: str, *, pool_size: int, statement_timeout_ms: int) -> None:
        options = f"-c statement_timeout={int(statement_timeout_ms)}"
        self.engine: Engine = sa.create_engine(
            url,
            json_serializer=lambda value: orjson.dumps(value).decode(),
            json_deserializer=orjson.loads,
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=True,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "options": options if statement_timeout_ms > 0 else "",
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            },
        )
        self.wait_seconds = WAIT_SECONDS
        self.down_seconds = DOWN_SECONDS
        self._down_until = 0.0
        self._primary_seen = 0
        self._lock = threading.Lock()

    def saw(self, primary_lsn: str) -> None:
        """The primary was at ``primary_lsn`` (a token this process handed out)."""
        number = lsn_number(primary_lsn)
        with self._lock:
            self._primary_seen = max(self._primary_seen, number)

    def _possible(self, token: str, primary_lsn: Callable[[], str]) -> bool:
        """Whether the primary has reached ``token``: known from what it was seen at, else
        asked once (a token another server handed out may be past what this one saw)."""
        if lsn_number(token) <= self._primary_seen:
            return True
        try:
            self.saw(primary_lsn())
        except sa.exc.DBAPIError:
            return True  # the primary cannot say: wait for the replica as usual
        return lsn_number(token) <= self._primary_seen

    def checkout(self, route: Route, primary_lsn: Callable[[], str]) -> Connection | None:
        """A replica connection that has replayed ``route.token``; None when the replica is
        down, lags past ``wait_seconds``, or the token is past the primary's position
        (``primary_lsn`` tells it): the caller reads from the primary."""
        if time.monotonic() < self._down_until:
            return None
        if route.token is not None and not self._possible(route.token, primary_lsn):
            return None
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError:
            self._mark_down()
            return None
        try:
            if route.token is None or self._replayed(conn, route.token):
                return conn
        except sa.exc.DBAPIError:
            self._mark_down()
        conn.close()
        return None

    def _replayed(self, conn: Connection, token: str) -> bool:
        """Whether the replica has replayed ``token`` within ``wait_seconds`` (a server
        that is not in recovery, a primary, always has)."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            done: Any = conn.exec_driver_sql(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= %(t)s::pg_lsn,"
                " NOT pg_is_in_recovery())",
                {"t": token},
            ).scalar_one()
            if done or time.monotonic() >= deadline:
                return bool(done)
            time.sleep(POLL_SECONDS)

    def _mark_down(self) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self.down_seconds

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
