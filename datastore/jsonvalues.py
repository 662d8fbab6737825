"""Facts about decoded JSON values shared by every stage."""

from __future__ import annotations

import math
from typing import Any

from datastore.types import INT64_MAX, INT64_MIN

WIDE_INTEGER = f"is an integer outside the 64-bit range ({INT64_MIN} to {INT64_MAX})"
"""Why an integer cannot be stored exactly (bodies, update results, imported rows)."""
NOT_FINITE = "is not a finite number"
"""Why a float cannot be stored (JSON has no infinity or NaN)."""


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: null, boolean, number (int and float alike), string,
    array (lists and tuples) or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def number_problem(value: int | float) -> str | None:
    """Why a number cannot be stored exactly (``WIDE_INTEGER``, ``NOT_FINITE``), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else NOT_FINITE
    return None if INT64_MIN <= value <= INT64_MAX else WIDE_INTEGER
