"""Facts about decoded JSON values shared by every stage."""

from __future__ import annotations

from collections.abc import Mapping
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


def with_defaults(document: Any, defaults: Mapping[tuple[str, ...], Any]) -> Any:
    """``document`` with the schema ``defaults`` (by property path) filled in, as
    ``blueprint.schemas.apply_defaults`` does: a missing or null property gets its default, and
    a nested default applies only inside an object that is present (or defaulted)."""
    if not defaults or not isinstance(document, Mapping):
        return document
    out = dict(document)
    for name in {path[0] for path in defaults}:
        if (name,) in defaults and out.get(name) is None:
            out[name] = defaults[(name,)]
        inner = {path[1:]: v for path, v in defaults.items() if path[0] == name and path[1:]}
        if inner and isinstance(out.get(name), Mapping):
            out[name] = with_defaults(out[name], inner)
    return out
