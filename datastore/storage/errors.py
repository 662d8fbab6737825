"""Driver errors turned into datastore errors (the original is kept as ``__cause__``)."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import psycopg
import sqlalchemy.exc
from psycopg_pool import PoolTimeout

from datastore.errors import BadRequest, DatastoreError, ServiceUnavailable

P = ParamSpec("P")
T = TypeVar("T")

_TIMEOUT_CODES = {"57014"}  # query_canceled (statement_timeout)
_LIMIT_CLASS = "54"
"""PostgreSQL's program_limit_exceeded: stack depth, too many arguments or columns, an index
row too large. The request was too large; the database is fine."""
_SQLITE_LIMITS = (
    "parser stack overflow",
    "expression tree is too large",
    "too many sql variables",
    "too many terms in compound select",
    "too many arguments on function",
    "too many columns",
    "at most 64 tables in a join",
    "like or glob pattern too complex",
    "string or blob too big",
)
"""SQLite's refusals of a statement too large or too deep (SQLITE_ERROR / SQLITE_TOOBIG)."""


def too_large(exc: BaseException) -> BadRequest | None:
    """A 400 for a statement past one of the database's limits (``exc``: the driver's error or
    SQLAlchemy's around it), else None."""
    driver = getattr(exc, "orig", None) or exc
    code = str(getattr(driver, "sqlstate", None) or "")
    message = str(driver).split("\n", 1)[0]
    if code.startswith(_LIMIT_CLASS) and message.startswith("index row"):
        return BadRequest(
            "A value of an indexed field (x-datastore-indexes) is too large for its index: "
            "keep indexed values under 2,000 bytes."
        )
    if code.startswith(_LIMIT_CLASS) or message.lower().startswith(_SQLITE_LIMITS):
        return BadRequest(
            f"The request is too large or too deeply nested for the database ({message}); "
            "simplify it."
        )
    return None


def translated(exc: BaseException) -> DatastoreError | None:
    """The datastore error a driver's error stands for (``exc``: psycopg's or sqlite3's, or
    SQLAlchemy's around one, or the async pool's timeout), or None when it is not a database
    failure of the request's making or the database's: the one table both paths use."""
    driver: BaseException = exc
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        driver = exc.orig
    code = getattr(driver, "sqlstate", None)
    if code in _TIMEOUT_CODES:
        return BadRequest("The query took too long and was cancelled; narrow it down.")
    if code in RETRYABLE:
        return ServiceUnavailable("The database is busy; try again.")
    refused = too_large(driver)
    if refused is not None:
        return refused
    if isinstance(driver, psycopg.DataError | sqlite3.DataError):
        # Class 22 (data exception): a value the database cannot take, e.g. U+0000 in JSONB.
        diag = getattr(driver, "diag", None)
        message = str(getattr(diag, "message_primary", "") or "")
        return BadRequest(
            "A value in the request cannot be stored or compared"
            + (f": {message}." if message else ".")
        )
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return ServiceUnavailable("The database connection was lost; try again.")
    if isinstance(driver, psycopg.OperationalError | sqlite3.OperationalError | PoolTimeout):
        return ServiceUnavailable("The database is unavailable; try again shortly.")
    if isinstance(driver, OverflowError):  # sqlite3 binds integers of 64 bits at most
        return BadRequest("A number in the request is too large for the database.")
    return None


_DRIVER_ERRORS = (
    sqlalchemy.exc.DBAPIError,
    psycopg.Error,
    sqlite3.Error,
    PoolTimeout,
    OverflowError,
)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map database failures to 503 (unreachable, timed out, busy) and statements the request
    made too large for the database to 400, with the driver error kept (``translated``)."""
    try:
        yield
    except (
        sqlalchemy.exc.DBAPIError,
        psycopg.Error,
        sqlite3.Error,
        PoolTimeout,
        OverflowError,
    ) as exc:
        error = translated(exc)
        if error is None:
            raise
        raise error from exc


RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def _retryable(exc: BaseException) -> bool:
    cause = exc.__cause__
    driver = getattr(cause, "orig", cause)
    return getattr(driver, "sqlstate", None) in RETRYABLE


def retry_conflicts(func: Callable[P, T]) -> Callable[P, T]:
    """Run a whole transaction again (up to 3 times) when PostgreSQL aborted it for a deadlock
    or a serialization failure, instead of answering 503."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(3):
            try:
                return func(*args, **kwargs)
            except ServiceUnavailable as exc:
                if not _retryable(exc) or attempt == 2:
                    raise
                time.sleep(0.01 * (attempt + 1) + random.random() * 0.01)
        raise AssertionError("unreachable")

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper
