"""Shared fixtures: one ``database`` fixture parametrized over SQLite and PostgreSQL.

PostgreSQL tests run in a throwaway database created for the session. Set
``DATASTORE_TEST_POSTGRES_URL`` to point at a server (default: postgres@127.0.0.1:5432). When it
is unreachable the PostgreSQL half is skipped, unless ``CI`` or
``DATASTORE_REQUIRE_POSTGRES`` is set, in which case the run fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench import pgbouncer
from datastore.storage import migrate
from datastore.storage.engine import Database
from tests.support import citus_audit as audit

ADMIN_URL = os.environ.get(
    "DATASTORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = bool(os.environ.get("CI") or os.environ.get("DATASTORE_REQUIRE_POSTGRES"))


def _postgres_reachable() -> str | None:
    try:
        engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()
    except sa.exc.OperationalError as exc:
        return str(exc).splitlines()[0]
    return None


def pytest_report_header(config: pytest.Config) -> str:
    """Which backends this run tests (the README promises both)."""
    shown = sa.make_url(ADMIN_URL).render_as_string(hide_password=True)
    problem = _postgres_reachable()
    if problem is None:
        return f"datastore backends: SQLite and PostgreSQL (found at {shown})"
    consequence = "required, so its tests fail" if REQUIRE_POSTGRES else "its tests are skipped"
    return (
        f"datastore backends: SQLite only; PostgreSQL not found at {shown} ({problem}): "
        f"{consequence} (set DATASTORE_TEST_POSTGRES_URL to use another server)"
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped afterwards."""
    problem = _postgres_reachable()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"datastore_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A brand-new empty PostgreSQL database; its URL, dropped afterwards."""
    name = f"datastore_fresh_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A brand-new empty PostgreSQL database of the test's own."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new empty database of the test's backend (migration tests start from it)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    with new_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file for this test session."""
    path: Path = tmp_path_factory.mktemp("sqlite") / "test.sqlite3"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def pgbouncer_port(postgres_url: str) -> Iterator[int]:
    """A PgBouncer in transaction mode in front of the test server, for the session."""
    problem = pgbouncer.missing()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PgBouncer is required under CI: {problem}")
        pytest.skip(f"PgBouncer tests skipped: {problem}")
    with pgbouncer.pgbouncer(postgres_url) as port:
        yield port


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str, pgbouncer_port: int) -> str:
    """The session's PostgreSQL database reached through PgBouncer (transaction mode)."""
    return pgbouncer.pooled_url(postgres_url, pgbouncer_port)


BACKENDS = ("sqlite", "postgresql")
"""What the ``database_url`` fixture is parametrized over; tests marked ``pgbouncer`` run
a third time with PostgreSQL behind PgBouncer in transaction mode."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``database_url`` over the backends (plus PgBouncer where marked)."""
    if "database_url" not in metafunc.fixturenames:
        return
    backends = list(BACKENDS)
    if metafunc.definition.get_closest_marker("pgbouncer") is not None:
        backends.append("pgbouncer")
    metafunc.parametrize("database_url", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of each backend in turn."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}.get(
        request.param, "pgbouncer_url"
    )
    return str(request.getfixturevalue(fixture))


def pooler_of(database_url: str) -> str:
    """The ``database_pooler`` setting for this test URL."""
    return "transaction" if database_url in pgbouncer.POOLED_URLS else ""


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    """A migrated database on each backend in turn (shared by the session)."""
    db = Database(database_url, pooler=pooler_of(database_url))
    migrate.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def space() -> str:
    """A fresh space name, so tests sharing a database never see each other's data."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def citus_audit(request: pytest.FixtureRequest) -> Iterator[None]:
    """In tests marked ``citus_audit`` on PostgreSQL: every statement that touches a table
    distributed by space must filter by it (``tests/support/citus_audit.py``)."""
    if request.node.get_closest_marker("citus_audit") is None or (
        "database" not in request.fixturenames
    ):
        yield
        return
    db: Database = request.getfixturevalue("database")
    if not db.is_postgresql:
        yield
        return
    with audit.recording(db.engine) as statements:
        yield
    bad = {
        sql: why
        for sql, frames in statements.items()
        if audit.audited(frames) and (why := audit.violations(sql))
    }
    if bad:
        shown = "\n\n".join(
            f"{sql[:300]}\n  -> {statements[sql][0]}: {'; '.join(why)}" for sql, why in bad.items()
        )
        pytest.fail(f"{len(bad)} statement(s) not routable by space (Citus):\n\n{shown}")
