"""Opening the database a user named: every problem with the URL or the server as one line.

``open_database`` checks the URL's form and backend before SQLAlchemy tries to import a driver,
then connects once, so an unsupported scheme, a server that is down or a database that does not
exist is a ``DatabaseUnavailable`` saying so (the URL shown without its password), not a
traceback at the first request.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from datastore.storage.engine import Database, normalise_url

SUPPORTED = "sqlite:///PATH or postgresql://USER@HOST:PORT/NAME"
_DRIVERS = {"sqlite": ("", "pysqlite"), "postgresql": ("psycopg",)}


class DatabaseUnavailable(ValueError):
    """The database URL is unusable, or the database cannot be reached; the message is one
    line for the user."""


def parse_url(url: str) -> URL:
    """The URL, checked to name a supported backend and driver; raises DatabaseUnavailable."""
    try:
        parsed = sa.make_url(normalise_url(url.strip()))
    except sa.exc.ArgumentError:
        raise DatabaseUnavailable(
            f"the database URL {url!r} is not a URL; give {SUPPORTED}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in _DRIVERS:
        raise DatabaseUnavailable(
            f"unsupported database {backend!r} in {shown(parsed)}; supported: {SUPPORTED}"
        )
    if driver not in _DRIVERS[backend]:
        raise DatabaseUnavailable(
            f"unsupported driver {parsed.drivername!r} in {shown(parsed)}; "
            f"supported: {SUPPORTED} (PostgreSQL through psycopg 3)"
        )
    return parsed


def shown(url: str | URL) -> str:
    """How a database is named to the user: a SQLite file's path, or the URL without its
    password."""
    if isinstance(url, str):
        try:
            url = sa.make_url(url)
        except sa.exc.ArgumentError:
            return "(not a URL)"
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database).resolve()) if url.database else "(SQLite in memory)"
    return url.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    text = lines[0] if lines else type(original).__name__
    # psycopg: 'connection failed: connection to server at "h", port 5 failed: FATAL:  ...'
    return text.rsplit("failed: ", 1)[-1].replace("FATAL:  ", "").strip()


def _createdb_hint(url: URL) -> str:
    options = []
    if url.host and url.host not in ("localhost", "127.0.0.1", "::1"):
        options.append(f"-h {url.host}")
    if url.port and url.port != 5432:
        options.append(f"-p {url.port}")
    if url.username:
        options.append(f"-U {url.username}")
    return " ".join(["createdb", *options, url.database or "NAME"])


def check_connection(db: Database) -> None:
    """Connect once; raises DatabaseUnavailable with one line saying what is wrong."""
    url = db.engine.url
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        reason = _reason(exc)
        if db.dialect == "sqlite":
            raise DatabaseUnavailable(
                f"cannot open the SQLite database {shown(url)}: {reason} "
                "(does its folder exist, and may you write there?)"
            ) from None
        if "does not exist" in reason and "database" in reason:
            raise DatabaseUnavailable(
                f"the database {url.database!r} does not exist at {shown(url)}; "
                f"create it with: {_createdb_hint(url)}"
            ) from None
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {shown(url)}: {reason} (is the server running? "
            f"a database that does not exist is created with: {_createdb_hint(url)})"
        ) from None


def open_database(
    url: str, *, pool_size: int = 10, statement_timeout_ms: int = 0, pooler: str = ""
) -> Database:
    """A ``Database`` for the URL, checked to be reachable; raises DatabaseUnavailable."""
    parse_url(url)
    db = Database(
        url, pool_size=pool_size, statement_timeout_ms=statement_timeout_ms, pooler=pooler
    )
    try:
        check_connection(db)
    except DatabaseUnavailable:
        db.dispose()
        raise
    return db
