"""Facts about decoded JSON values shared by every stage."""

from __future__ import annotations

from typing import Any


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


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality of decoded values: same JSON type and value, numbers by value (``1`` equals
    ``1.0``), arrays element by element, objects key by key whatever their key order."""
    kind = json_type(left)
    if kind != json_type(right):
        return False
    if kind == "array":
        return len(left) == len(right) and all(
            json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if kind == "object":
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return bool(left == right)
