"""Opaque keyset cursors: page 1000 costs what page 1 costs.

A listing is ordered by the sort keys' column expressions (``Compiler.sort_columns``, never
NULL) and then by ``pk`` (creation order). A cursor carries the values of those columns for the
row it points at, plus a fingerprint of the order, encoded as URL-safe base64 of JSON.
"The rows after the cursor" is the lexicographic condition
``c1 ▷ v1 OR (c1 = v1 AND (c2 ▷ v2 OR (... pk > p)))`` where ``▷`` is ``>`` for an ascending
column and ``<`` for a descending one; "before" flips every direction. A cursor used with
another order is refused (400), and so is a value of the wrong kind for its column (a tampered
cursor: an object, a list, text where a number belongs, a naive time, NaN), before any SQL.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from datastore.errors import BadRequest, InvalidParam
from datastore.types import INT64_MAX

Column = tuple[ColumnElement[Any], bool]  # (expression, descending)


def fingerprint(order: str) -> str:
    """A short fingerprint of an order description (sort parameter, dialect...)."""
    return hashlib.sha256(order.encode()).hexdigest()[:12]


def _encode_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, bool):
        return int(value)
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "d" in value:
        return Decimal(value["d"])
    if isinstance(value, dict) and "t" in value:
        moment = datetime.fromisoformat(value["t"])
        return moment.astimezone(UTC) if moment.tzinfo else moment  # OverflowError past 9999
    return value


def encode(order: str, values: Sequence[Any]) -> str:
    """The cursor of a row: its order column values (pk last)."""
    payload = {"o": fingerprint(order), "v": [_encode_value(v) for v in values]}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def decode(cursor: str, order: str, columns: Sequence[Column], name: str) -> list[Any]:
    """The values in a cursor for ``columns``; raises BadRequest naming ``name`` when it is
    malformed, for another order, or holds a value its column cannot be compared with."""
    bad = BadRequest(
        "The paging cursor is not valid.",
        invalid_params=[InvalidParam(name, "is not a cursor of this listing")],
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(payload, dict) or payload.get("o") != fingerprint(order):
        raise bad
    values = payload.get("v")
    if not isinstance(values, list) or len(values) != len(columns):
        raise bad
    try:
        decoded = [_decode_value(v) for v in values]
    except (ValueError, TypeError, ArithmeticError):
        raise bad from None
    if not all(_fits(c.type, v) for (c, _), v in zip(columns, decoded, strict=True)):
        raise bad
    return decoded


def _fits(column_type: TypeEngine[Any], value: Any) -> bool:
    """Whether ``value`` is of the kind the column holds (what ``encode`` writes for it)."""
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(value, bool) or value is None:
        return False  # bools are written as 0/1; no order column is ever NULL
    if isinstance(column_type, sa.DateTime):
        return isinstance(value, datetime) and value.tzinfo is not None
    if isinstance(column_type, sa.String):
        return isinstance(value, str) and "\x00" not in value
    if isinstance(column_type, sa.Integer):  # SQLite's number column too: ints and floats
        return _finite_number(value) and abs(value) <= INT64_MAX
    if isinstance(column_type, sa.Numeric):
        return (isinstance(value, Decimal) and value.is_finite()) or _finite_number(value)
    return isinstance(value, str) or _finite_number(value)


def _finite_number(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, float) and math.isfinite(value)


def after(
    columns: Sequence[Column], values: Sequence[Any], *, backwards: bool = False
) -> ColumnElement[bool]:
    """The rows strictly after (``backwards``: before) the row with ``values`` in the order of
    ``columns``. Each run of columns that go the same way is one row-value comparison, so when
    every column runs the same way this is a single one, which an index on those columns
    answers with a range scan. With mixed directions the first run that differs from the
    cursor's values decides: ``CASE WHEN r1 <> v1 THEN r1 ▷ v1 WHEN r2 <> v2 THEN r2 ▷ v2 ...
    ELSE false END`` (the last run ends with ``pk``, so only the cursor's own row is equal),
    flat however many runs there are: nesting ``r1 ▷ v1 OR (r1 = v1 AND (...))`` per column
    exhausted SQLAlchemy's recursion at 32 keys (a 500) and SQLite's parser stack at 16 (503)."""
    runs = [(descending, *_row(run)) for descending, run in _runs(columns, values)]
    beyond: list[ColumnElement[bool]] = [
        row > bound if desc == backwards else row < bound for desc, row, bound in runs
    ]
    if len(runs) == 1:
        return beyond[0]
    decisions = [(row != bound, b) for (_, row, bound), b in zip(runs, beyond, strict=True)]
    condition: ColumnElement[bool] = sa.case(*decisions, else_=sa.false())
    return condition


def _runs(
    columns: Sequence[Column], values: Sequence[Any]
) -> list[tuple[bool, list[tuple[ColumnElement[Any], Any]]]]:
    """Consecutive columns of one direction, each with its value."""
    runs: list[tuple[bool, list[tuple[ColumnElement[Any], Any]]]] = []
    for (expression, descending), value in zip(columns, values, strict=True):
        if not runs or runs[-1][0] != descending:
            runs.append((descending, []))
        runs[-1][1].append((expression, value))
    return runs


def _row(run: list[tuple[ColumnElement[Any], Any]]) -> tuple[Any, Any]:
    """The columns of a run and their bound values: a row value, or one column alone."""
    bounds = [sa.literal(value, expression.type) for expression, value in run]
    if len(run) == 1:
        return run[0][0], bounds[0]
    return sa.tuple_(*[expression for expression, _ in run]), sa.tuple_(*bounds)
