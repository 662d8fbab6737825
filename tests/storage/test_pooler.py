"""PostgreSQL behind PgBouncer in transaction mode (``database_pooler = transaction``):
what breaks without the setting, and what the setting keeps (timeouts per transaction,
nothing prepared, migrations and start-up index creation through the pooler)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from bench.pgbouncer import pooled_url
from datastore.storage import migrate
from datastore.storage.connect import DatabaseUnavailable, open_database
from datastore.storage.engine import Database
from datastore.storage.indexes import ensure_indexes, index_names, index_specs

ROOT = Path(__file__).resolve().parents[2]
INDEXED = {"paths": {"/ev": {"x-datastore-indexes": ["cost", "venue.city"]}}}


@pytest.fixture
def fresh_pooled_url(fresh_postgres_url: str, pgbouncer_port: int) -> str:
    """A brand-new empty PostgreSQL database, reached through the session's PgBouncer."""
    return pooled_url(fresh_postgres_url, pgbouncer_port)


@pytest.fixture
def pooled(fresh_pooled_url: str) -> Iterator[Database]:
    db = Database(fresh_pooled_url, statement_timeout_ms=300, pooler="transaction")
    try:
        yield db
    finally:
        db.dispose()


def test_without_the_setting_pgbouncer_refuses_the_session_options(fresh_pooled_url: str) -> None:
    with pytest.raises(DatabaseUnavailable, match="unsupported startup parameter: options"):
        open_database(fresh_pooled_url, statement_timeout_ms=300)
    open_database(fresh_pooled_url, pooler="transaction").dispose()


def test_migrations_and_start_up_indexes_through_pgbouncer(pooled: Database) -> None:
    assert migrate.current_revision(pooled) is None
    migrate.upgrade(pooled)
    migrate.upgrade(pooled)  # idempotent
    assert migrate.current_revision(pooled) == migrate.head_revision(pooled)
    specs = index_specs(INDEXED)
    errors: list[BaseException] = []

    def start_up() -> None:  # two workers starting at once
        try:
            ensure_indexes(pooled, specs)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=start_up) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    with pooled.read() as conn:
        made = conn.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%(n)s)",
            {"n": index_names(specs)},
        )
        assert {row[0] for row in made} == set(index_names(specs))


@pytest.mark.parametrize("kind", ["read", "write"])
def test_the_statement_timeout_holds_in_every_transaction(pooled: Database, kind: str) -> None:
    transaction = pooled.read if kind == "read" else pooled.write
    with (
        pytest.raises(sa.exc.OperationalError, match="statement timeout"),
        transaction() as conn,
    ):
        conn.exec_driver_sql("SELECT pg_sleep(2)")
    with transaction() as conn:
        shown = conn.exec_driver_sql("SHOW statement_timeout").scalar()
        idle = conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar()
    assert (shown, idle) == ("300ms", "5s")


def test_settings_never_outlive_their_transaction(pooled: Database, fresh_pooled_url: str) -> None:
    """What a transaction set is gone for the next client of its server connection."""
    with pooled.write() as conn:
        conn.exec_driver_sql("SELECT 1")
    conninfo = sa.make_url(fresh_pooled_url).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True) as raw:
        for _ in range(10):  # PgBouncer may hand out any of its server connections
            timeout = raw.execute("SHOW statement_timeout").fetchone()
            assert timeout == ("0",)


def test_nothing_is_prepared(pooled: Database) -> None:
    with pooled.read() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        assert driver.prepare_threshold is None
    assert pooled.async_store is not None
    assert pooled.async_store.prepare_threshold is None
    assert pooled.async_store.options == ""


def test_advisory_locks_are_transaction_level_only() -> None:
    """A session-level advisory lock would stay with a server connection PgBouncer hands to
    the next transaction of any client."""
    session_level = re.compile(r"pg_(try_)?advisory_(un)?lock(_shared)?\b|advisory_unlock_all")
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "datastore").rglob("*.py"))
        + sorted((ROOT / "migrations").rglob("*.py"))
        if session_level.search(path.read_text())
    ]
    assert offenders == []
