"""Engines, pools and transactions for both backends.

PostgreSQL goes through psycopg 3 with SQLAlchemy's pool. SQLite gets WAL, a busy timeout,
foreign keys, ``synchronous=NORMAL`` (``SYNCHRONOUS``) and one writer at a time: SQLite allows
a single writer, so concurrent write transactions are serialised by a process-wide lock here
and opened with ``BEGIN IMMEDIATE`` (which waits in SQLite's busy handler for other processes'
writers, e.g. gunicorn's other workers) instead of failing with "database is locked" midway.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

from datastore.concurrency import run_in_threadpool
from datastore.storage.dialects import dialect_for
from datastore.storage.dialects.base import Dialect
from datastore.storage.dialects.sqlite import register as register_sqlite_functions
from datastore.storage.pooler import NO_POOLER, TRANSACTION_POOLER, set_local_per_transaction
from datastore.storage.replica import ROUTE, Replica, current_lsn

if TYPE_CHECKING:
    from datastore.storage.async_store import AsyncStore

DEFAULT_SQLITE_FILE = "datastore.sqlite3"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_sqlite_url(directory: Path | None = None) -> str:
    """The embedded default: a SQLite file in the working directory."""
    path = (directory or Path.cwd()) / DEFAULT_SQLITE_FILE
    return f"sqlite:///{path}"


class Database:
    """One engine plus the transaction discipline of its backend.

    ``write()`` opens a transaction that may write (serialised on SQLite), ``read()`` one that
    only reads. Both commit on success and roll back on any error.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        statement_timeout_ms: int = 0,
        pooler: str = NO_POOLER,
        read_url: str = "",
    ) -> None:
        self.url = normalise_url(url)
        self.pooler = pooler
        """``transaction`` behind a transaction-mode pooler such as PgBouncer (``pooler.py``)."""
        self.engine: Engine = _create_engine(self.url, pool_size, statement_timeout_ms, pooler)
        self.dialect: str = self.engine.dialect.name
        # PostgreSQL reads run in autocommit: no BEGIN and ROLLBACK round trips. Under READ
        # COMMITTED every statement takes its own snapshot inside a transaction too, so a
        # read sees exactly what it saw before. Behind a transaction pooler a read is a
        # transaction: its session settings are SET LOCAL, which autocommit would drop.
        self._read_engine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql" and pooler == NO_POOLER
            else self.engine
        )
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.replica: Replica | None = None
        """The read replica (``read_database``): ``read()`` inside a request that may read
        from it (``storage/replica.py``)."""
        if read_url:
            self.replica = Replica(
                normalise_url(read_url),
                pool_size=pool_size,
                statement_timeout_ms=statement_timeout_ms,
            )
        self.async_store: AsyncStore | None = None
        """Async single-document reads (PostgreSQL); see ``storage/async_store.py``."""
        if self.dialect == "postgresql":
            from datastore.storage.async_store import AsyncStore

            conninfo = sa.make_url(self.url).set(drivername="postgresql")
            self.async_store = AsyncStore(
                conninfo.render_as_string(hide_password=False),
                pool_size=pool_size,
                options=""
                if pooler == TRANSACTION_POOLER
                else session_options(statement_timeout_ms),
                prepare_threshold=None if pooler == TRANSACTION_POOLER else 5,
            )

    @property
    def backend(self) -> Dialect:
        """What this database's backend can do, and its SQL (``storage/dialects/``)."""
        return dialect_for(self.dialect)

    @property
    def is_postgresql(self) -> bool:
        """Whether this database is PostgreSQL."""
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction; on SQLite one writer at a time."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._sqlite_write(BUSY_TIMEOUT_MS) as conn:
            yield conn

    @contextmanager
    def schema_change(self) -> Iterator[Connection]:
        """A write transaction for start-up's schema changes (migrations, indexes). On SQLite
        it waits up to ``SCHEMA_WAIT_MS`` for the write lock: another worker starting at the
        same moment may hold it while it builds indexes over a large table, longer than a
        request would wait. (PostgreSQL's callers take an advisory lock in it.)"""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._sqlite_write(SCHEMA_WAIT_MS) as conn:
            yield conn

    @contextmanager
    def _sqlite_write(self, busy_timeout_ms: int) -> Iterator[Connection]:
        """``BEGIN IMMEDIATE`` under this process's write lock: the threads of one process
        queue on the lock, other processes' writers in SQLite's busy handler, for up to
        ``busy_timeout_ms`` (then ``database is locked``: a 503 with ``Retry-After``)."""
        assert self._write_lock is not None
        with self._write_lock, self.engine.connect() as conn:
            if busy_timeout_ms != BUSY_TIMEOUT_MS:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
            finally:
                if busy_timeout_ms != BUSY_TIMEOUT_MS:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading: a read transaction (one snapshot) on SQLite; on
        PostgreSQL autocommit statements, each with its own snapshot as under READ COMMITTED;
        on the replica when there is one, the request may read from it, and it has replayed
        the request's consistency token (``storage/replica.py``)."""
        route = ROUTE.get()
        if self.replica is not None and route is not None:
            replica = self.replica.checkout(route, self.current_lsn)
            if replica is not None:
                with replica:
                    yield replica
                return
        if self.dialect != "sqlite":
            with self._read_engine.connect() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()

    def current_lsn(self) -> str:
        """The primary's WAL position now (PostgreSQL): a write's consistency token."""
        with self.engine.connect() as conn:
            position = current_lsn(conn)
        if self.replica is not None:
            self.replica.saw(position)
        return position

    async def position(self) -> str:
        """``current_lsn``, on a worker thread."""
        return await run_in_threadpool(self.current_lsn)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.replica is not None:
            self.replica.dispose()


BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write transaction (SQLite's busy
handler) before giving up with ``database is locked``, which requests answer as 503 with
``Retry-After``. Write transactions of the datastore take milliseconds: 30 s of waiting is a
deep queue, not a normal wait."""

SCHEMA_WAIT_MS = 600_000
"""How long start-up's migrations and index builds wait for another worker's (SQLite)."""

SYNCHRONOUS = "NORMAL"
"""SQLite's ``synchronous`` setting, with WAL: a commit is in the WAL file (the operating
system's page cache) before it is acknowledged, so acknowledged writes survive a crash or
SIGKILL of the server process; only the last transactions before a power loss or an operating
system crash may be lost (``FULL`` would fsync each commit: durable across power loss, at
the cost of a disk flush per write). ``tests/test_crash.py`` kills gunicorn mid-load."""

GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"
"""Prepared statements (psycopg prepares a statement on its 5th run on a connection) keep one
generic plan: planning a listing with its values, against every expression index of the
documents table, took ~4 ms where running the plan took ~0.3 ms."""

IDLE_IN_TRANSACTION = "-c idle_in_transaction_session_timeout=5000"
"""A transaction of the datastore never waits seconds between its statements; one that does
lost its client (a connection cut by the network or a proxy while the server kept the
transaction open), and its row locks would hold up every later write of those documents until
TCP noticed. PostgreSQL ends such a session after 5 s."""


def session_options(statement_timeout_ms: int) -> str:
    """The libpq ``options`` of every PostgreSQL connection, on both pools: generic plans,
    the idle-in-transaction timeout, and the statement timeout when one is set."""
    options = [GENERIC_PLANS, IDLE_IN_TRANSACTION]
    if statement_timeout_ms > 0:
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    return " ".join(options)


def _create_engine(url: str, pool_size: int, statement_timeout_ms: int, pooler: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    if pooler == TRANSACTION_POOLER:
        engine = _postgresql_engine(url, pool_size, {"prepare_threshold": None})
        set_local_per_transaction(engine, statement_timeout_ms)
        return engine
    return _postgresql_engine(url, pool_size, {"options": session_options(statement_timeout_ms)})


def _postgresql_engine(url: str, pool_size: int, connect_args: dict[str, Any]) -> Engine:
    return sa.create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        # Twice ``pool_size``, all kept open: with the second half as overflow, a connection
        # past ``pool_size`` was closed on return and opened again on the next checkout (a
        # new PostgreSQL backend, and no prepared statements) whenever more than
        # ``pool_size`` requests of a worker were in the database: under 64 connections,
        # lists ran at a third of the rate with the CPU spent on connecting.
        pool_size=2 * pool_size,
        max_overflow=0,
        # Every checkout pings (one round trip per transaction). Pinging only connections
        # idle for over a second was measured faster, but under load through a database
        # outage it handed out connections that then waited forever on row locks of
        # transactions lost with the old connections (tests/http/test_outage.py).
        pool_pre_ping=True,
        connect_args=connect_args,
    )


WAL_RETRY_SECONDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
"""Pauses between attempts to switch a file to WAL while another connection holds it."""


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while the file is locked: SQLite answers
    "database is locked" at once, without its busy handler, when several workers open a new
    file at the same moment (tests/storage/test_migrations.py saw it one start in ~40). That is
    SQLITE_BUSY (its primary code, under any extended code); every other error is raised."""
    for pause in (*WAL_RETRY_SECONDS, None):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if pause is None or exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            time.sleep(pause)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy/us issue BEGIN explicitly (pysqlite's own handling is broken).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # The busy timeout first (the driver's ``timeout`` sets it too): switching a new file
        # to WAL takes a lock that another worker starting at once may hold.
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        cursor.close()
        register_sqlite_functions(dbapi_conn)
