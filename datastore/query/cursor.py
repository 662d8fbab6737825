"""Opaque keyset cursors: page 1000 costs what page 1 costs.

A listing is ordered by the sort keys' column expressions (``Compiler.sort_columns``, never
NULL) and then by ``pk`` (creation order). A cursor carries the values of those columns for the
row it points at, plus a fingerprint of the order, encoded as URL-safe base64 of JSON.
"The rows after the cursor" is a condition storage writes (``storage/keyset.py``). This module
is the codec: it knows each column only by its kind (``KINDS``). A cursor used with
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

from datastore.errors import BadRequest, InvalidParam
from datastore.types import INT64_MAX

KINDS = ("datetime", "string", "integer", "numeric", "any")
"""What an order column holds, as far as a cursor value must fit it: a UTC time, text, a
64-bit integer (SQLite's number column: any finite number in range), a decimal, or a string
or a finite number."""


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


def _bad(name: str) -> BadRequest:
    return BadRequest(
        "The paging cursor is not valid.",
        invalid_params=[InvalidParam(name, "is not a cursor of this listing")],
    )


def decode(cursor: str, order: str, name: str) -> tuple[Any, ...]:
    """The values in a cursor; raises BadRequest naming ``name`` when it is malformed or for
    another order."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise _bad(name) from None
    if not isinstance(payload, dict) or payload.get("o") != fingerprint(order):
        raise _bad(name)
    values = payload.get("v")
    if not isinstance(values, list):
        raise _bad(name)
    try:
        return tuple(_decode_value(v) for v in values)
    except (ValueError, TypeError, ArithmeticError):
        raise _bad(name) from None


def check(kinds: Sequence[str], values: Sequence[Any], name: str) -> None:
    """Raise BadRequest naming ``name`` unless there is one value per column and each is of
    the kind (``KINDS``) its column holds (what ``encode`` writes for it)."""
    if len(values) != len(kinds) or not all(
        _fits(kind, value) for kind, value in zip(kinds, values, strict=True)
    ):
        raise _bad(name)


def _fits(kind: str, value: Any) -> bool:
    """Whether ``value`` is of the kind the column holds."""
    if isinstance(value, bool) or value is None:
        return False  # bools are written as 0/1; no order column is ever NULL
    if kind == "datetime":
        return isinstance(value, datetime) and value.tzinfo is not None
    if kind == "string":
        return isinstance(value, str) and "\x00" not in value
    if kind == "integer":
        # -2**63 included: a document may hold it, and its cursor must page on.
        return _finite_number(value) and -INT64_MAX - 1 <= value <= INT64_MAX
    if kind == "numeric":
        return (isinstance(value, Decimal) and value.is_finite()) or _finite_number(value)
    return isinstance(value, str) or _finite_number(value)


def _finite_number(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, float) and math.isfinite(value)
