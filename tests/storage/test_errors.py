"""Driver errors → datastore errors: what a request made too large for the database is a 400,
an outage stays a 503 (the HTTP cases are in tests/http/test_client_errors.py)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import sqlalchemy.exc

from datastore.errors import BadRequest, DatastoreError, ServiceUnavailable
from datastore.storage.errors import translate_errors


def translated(error: BaseException) -> DatastoreError:
    with pytest.raises(DatastoreError) as raised, translate_errors():
        raise error
    return raised.value


def wrapped(orig: Exception) -> sqlalchemy.exc.DBAPIError:
    """As SQLAlchemy raises it: OperationalError, DataError... around the driver's error."""
    base = psycopg.Error if isinstance(orig, psycopg.Error) else sqlite3.Error
    return sqlalchemy.exc.DBAPIError.instance("SELECT 1", {}, orig, base)


@pytest.mark.parametrize(
    "orig",
    [
        sqlite3.OperationalError("parser stack overflow"),
        sqlite3.OperationalError("Expression tree is too large (maximum depth 1000)"),
        sqlite3.OperationalError("too many SQL variables"),
        sqlite3.OperationalError("too many terms in compound SELECT"),
        sqlite3.DataError("string or blob too big"),
        psycopg.errors.TooManyArguments("cannot pass more than 100 arguments to a function"),
        psycopg.errors.StatementTooComplex("stack depth limit exceeded"),
        psycopg.errors.TooManyColumns("target lists can have at most 1664 entries"),
    ],
)
def test_statements_past_the_databases_limits_are_400(orig: Exception) -> None:
    error = translated(wrapped(orig))
    assert isinstance(error, BadRequest)
    assert str(orig).split("\n")[0] in str(error.detail)


def test_an_index_row_too_large_is_400_without_the_index_name() -> None:
    orig = psycopg.errors.ProgramLimitExceeded(
        'index row size 3040 exceeds btree version 4 maximum 2704 for index "ix_documents_x_1"'
    )
    error = translated(wrapped(orig))
    assert isinstance(error, BadRequest)
    assert "ix_documents" not in str(error.detail)


@pytest.mark.parametrize(
    "orig",
    [
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("unable to open database file"),
        sqlite3.OperationalError("disk I/O error"),
        psycopg.OperationalError("connection to server at 127.0.0.1 failed: Connection refused"),
        psycopg.errors.TooManyConnections("sorry, too many clients already"),
        psycopg.errors.OutOfMemory("out of memory"),
        psycopg.errors.DiskFull("could not extend file"),
    ],
)
def test_outages_stay_503(orig: Exception) -> None:
    assert isinstance(translated(wrapped(orig)), ServiceUnavailable)


def test_integers_sqlite_cannot_bind_are_400() -> None:
    error = translated(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert isinstance(error, BadRequest)
