"""Opaque keyset cursors: page 1000 costs what page 1 costs.

A listing is ordered by the sort keys' column expressions (``Compiler.sort_columns``, never
NULL) and then by ``pk`` (creation order). A cursor carries the values of those columns for the
row it points at, plus a fingerprint of the order, encoded as URL-safe base64 of JSON.
"The rows after the cursor" is the lexicographic condition
``c1 ▷ v1 OR (c1 = v1 AND (c2 ▷ v2 OR (... pk > p)))`` where ``▷`` is ``>`` for an ascending
column and ``<`` for a descending one; "before" flips every direction. A cursor used with
another order is refused (400).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from datastore.errors import BadRequest, InvalidParam

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
        return datetime.fromisoformat(value["t"])
    return value


def encode(order: str, values: Sequence[Any]) -> str:
    """The cursor of a row: its order column values (pk last)."""
    payload = {"o": fingerprint(order), "v": [_encode_value(v) for v in values]}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def decode(cursor: str, order: str, count: int, name: str) -> list[Any]:
    """The values in a cursor; raises BadRequest when it is malformed or for another order."""
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
    if not isinstance(values, list) or len(values) != count:
        raise bad
    try:
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, ArithmeticError):
        raise bad from None


def after(
    columns: Sequence[Column], values: Sequence[Any], *, backwards: bool = False
) -> ColumnElement[bool]:
    """The rows strictly after (``backwards``: before) the row with ``values`` in the order of
    ``columns``. When every column runs the same way this is one row-value comparison, which
    an index on those columns answers with a range scan."""
    directions = {descending for _, descending in columns}
    if len(directions) == 1:
        forwards = directions.pop() == backwards
        bounds = [
            sa.literal(v, expression.type) if not isinstance(v, bool) else v
            for (expression, _), v in zip(columns, values, strict=True)
        ]
        row = sa.tuple_(*[expression for expression, _ in columns])
        bound_row = sa.tuple_(*bounds)
        return row > bound_row if forwards else row < bound_row
    condition: ColumnElement[bool] | None = None
    for (expression, descending), value in reversed(list(zip(columns, values, strict=True))):
        forwards = descending == backwards
        bound = sa.literal(value, expression.type) if not isinstance(value, bool) else value
        beyond = expression > bound if forwards else expression < bound
        if condition is None:
            condition = beyond
        else:
            condition = sa.or_(beyond, sa.and_(expression == bound, condition))
    assert condition is not None
    return condition
