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
