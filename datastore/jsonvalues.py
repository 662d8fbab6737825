"""Facts about decoded JSON values shared by every stage."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from datastore.errors import BadRequest, InvalidParam
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


def json_copy(value: Any) -> Any:
    """A deep copy of a decoded JSON value: new objects and arrays, the same (immutable)
    scalars. A fifth of ``copy.deepcopy``'s time, which checks every value's type for a copier
    and keeps a memo of what it copied (JSON has no shared or cyclic parts)."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value


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
    ``blueprint.schemas.apply_defaults`` does: a missing property gets its default (a null is
    a value and stays), and a nested default applies only inside an object that is present (or
    defaulted)."""
    if not defaults or not isinstance(document, Mapping):
        return document
    out = dict(document)
    for name in {path[0] for path in defaults}:
        if (name,) in defaults and name not in out:
            out[name] = defaults[(name,)]
        inner = {path[1:]: v for path, v in defaults.items() if path[0] == name and path[1:]}
        if inner and isinstance(out.get(name), Mapping):
            out[name] = with_defaults(out[name], inner)
    return out


def number_problem(value: int | float) -> str | None:
    """Why a number cannot be stored exactly (``WIDE_INTEGER``, ``NOT_FINITE``), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else NOT_FINITE
    return None if INT64_MIN <= value <= INT64_MAX else WIDE_INTEGER


def join_path(path: Iterable[str | int]) -> str:
    """``("address", "city")`` → ``address.city``; ``("tags", 2)`` → ``tags[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def query_integer(value: int) -> int | float:
    """An integer read from query text as a query compares it: itself within 64 bits, beyond
    as the float ``q=`` JSON gives it (no integer wider than 64 bits reaches the database)."""
    return value if INT64_MIN <= value <= INT64_MAX else float(value)


def contains_nul(value: Any) -> bool:
    """Whether any string (or key) in a JSON value holds U+0000, which PostgreSQL's JSONB cannot
    store or compare; refused on both backends alike."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value (scalars 0); stops counting once past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


_LONG_NUMBER = re.compile(rb"[0-9]{19}")
"""A run of 19 digits: the shortest text of an integer that may not fit in 64 bits."""


def check_storable(value: Any, max_depth: int, raw: bytes | None = None) -> None:
    """Raise BadRequest unless a decoded JSON value may be stored as it is: nested at most
    ``max_depth`` levels, every number storable exactly, no NUL character. ``raw`` is the JSON
    text it was decoded from, if any: orjson reads integers past 64 bits as floats, so they are
    found in the text; without it (values typed from CSV) the numbers are taken as they are.
    The one set of checks for request bodies and imported records."""
    if json_depth(value, max_depth) > max_depth:
        raise BadRequest(
            "The body is nested too deeply.",
            invalid_params=[InvalidParam("body", f"may be nested at most {max_depth} levels deep")],
        )
    if raw is None:
        _refuse_unstorable_numbers(value)
    elif _LONG_NUMBER.search(raw):
        _refuse_unstorable_numbers(json.loads(raw))
    if (raw is None or b"\\u0000" in raw) and contains_nul(value):
        raise BadRequest(
            "Text may not contain the NUL character.",
            invalid_params=[InvalidParam("body", "contains a NUL character (\\u0000)")],
        )


def _refuse_unstorable_numbers(value: Any) -> None:
    """Raise BadRequest naming every number of ``value`` that cannot be stored exactly."""
    bad: list[InvalidParam] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, (*path, str(k))) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))
        elif isinstance(node, int | float) and not isinstance(node, bool):
            problem = number_problem(node)
            if problem is not None:
                bad.append(InvalidParam(join_path(path), problem))
    if bad:
        bad.sort(key=lambda p: p.name)
        raise BadRequest(
            "The body holds numbers that cannot be stored exactly.", invalid_params=bad
        )
