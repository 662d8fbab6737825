"""Mongo-style update operators applied to a document body (PATCH and ``_byquery``).

A body whose keys are all operators (``$set``, ``$unset``, ``$inc``, ``$push`` with ``$each``,
``$pull``, ``$pullAll``, ``$pop``, ``$addToSet`` with ``$each``, ``$rename``) is applied
operator by operator, fields by dot path; a body without operators replaces the given top-level
fields; mixing the two is refused. The result is a new body (the input is not changed); the
caller validates it against the schema before storing.
"""

from __future__ import annotations

from typing import Any

from datastore.errors import BadRequest, InvalidParam
from datastore.jsonvalues import json_copy, number_problem
from datastore.query.evaluate import equal
from datastore.types import Document

OPERATORS = ("$set", "$unset", "$inc", "$push", "$pull", "$pullAll", "$pop", "$addToSet", "$rename")


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest("The update is not valid.", invalid_params=[InvalidParam(name, reason)])


def is_operator_update(update: dict[str, Any]) -> bool:
    """Whether the body is an operator update (raises BadRequest when it mixes both forms)."""
    operators = [k for k in update if k.startswith("$")]
    if operators and len(operators) != len(update):
        raise _bad("body", "mixes update operators with plain fields")
    return bool(operators)


def _path(name: str, where: str) -> list[str]:
    parts = name.split(".")
    if not name or any(not p for p in parts) or any(p.startswith("$") for p in parts):
        raise _bad(where, f"{name!r} is not a field path")
    return parts


def _parent(
    body: dict[str, Any], parts: list[str], where: str, create: bool
) -> dict[str, Any] | None:
    node: Any = body
    for part in parts[:-1]:
        if not isinstance(node, dict):
            raise _bad(where, f"cannot reach {'.'.join(parts)}: a parent is not an object")
        if part not in node:
            if not create:
                return None
            node[part] = {}
        node = node[part]
    if not isinstance(node, dict):
        raise _bad(where, f"cannot reach {'.'.join(parts)}: a parent is not an object")
    return node


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _incremented(current: Any, value: Any, present: bool, where: str) -> int | float:
    """``current + value`` for ``$inc``; raises BadRequest unless the sum is a number a body
    may hold (an integer within 64 bits, a finite float), as bodies are checked on the way in:
    the sum of two stored numbers could otherwise become infinity (stored as null) or an
    integer no body could carry."""
    if not _number(value):
        raise _bad(where, "must be a number")
    if present and not _number(current):
        raise _bad(where, "cannot increment a value that is not a number")
    total: int | float = (current or 0) + value
    problem = number_problem(total)
    if problem is not None:
        raise _bad(where, f"would overflow: the result {problem}")
    return total


def _each(value: Any) -> list[Any]:
    if isinstance(value, dict) and "$each" in value:
        if set(value) != {"$each"} or not isinstance(value["$each"], list):
            raise _bad("$each", "must be the only key, with a list")
        return list(value["$each"])
    return [value]


def apply_update(body: Document, update: dict[str, Any]) -> Document:
    """The body after ``update``; raises BadRequest naming the offending operator/field."""
    if not isinstance(update, dict):
        raise _bad("body", "must be a JSON object")
    if not is_operator_update(update):
        return {**json_copy(body), **json_copy(update)}
    result: Document = json_copy(body)
    for operator, fields in update.items():
        if operator not in OPERATORS:
            raise _bad(operator, "is not a known update operator")
        if not isinstance(fields, dict) or not fields:
            raise _bad(operator, "must be an object of fields")
        for name, value in fields.items():
            where = f"{operator}.{name}"
            _apply(result, operator, _path(name, where), json_copy(value), where)
    return result


def _apply(body: dict[str, Any], op: str, parts: list[str], value: Any, where: str) -> None:
    key = parts[-1]
    if op == "$unset":
        parent = _parent(body, parts, where, create=False)
        if parent is not None:
            parent.pop(key, None)
        return
    if op == "$rename":
        if not isinstance(value, str):
            raise _bad(where, "must name the new field")
        source = _parent(body, parts, where, create=False)
        if source is None or key not in source:
            return
        moved = source.pop(key)
        target_parts = _path(value, where)
        target = _parent(body, target_parts, where, create=True)
        assert target is not None
        target[target_parts[-1]] = moved
        return
    parent = _parent(body, parts, where, create=True)
    assert parent is not None
    current = parent.get(key)
    if op == "$set":
        parent[key] = value
    elif op == "$inc":
        parent[key] = _incremented(current, value, key in parent, where)
    elif op in ("$push", "$addToSet", "$pull", "$pullAll", "$pop"):
        if key in parent and not isinstance(current, list):
            raise _bad(where, "is not a list")
        items: list[Any] = list(current or [])
        if op == "$push":
            items.extend(_each(value))
        elif op == "$addToSet":
            for item in _each(value):
                if not any(equal(item, existing) for existing in items):
                    items.append(item)
        elif op == "$pull":
            items = [i for i in items if not equal(i, value)]
        elif op == "$pullAll":
            if not isinstance(value, list):
                raise _bad(where, "must be a list")
            items = [i for i in items if not any(equal(i, v) for v in value)]
        else:
            if value not in (1, -1) or isinstance(value, bool):
                raise _bad(where, "must be 1 (last) or -1 (first)")
            if items:
                items.pop() if value == 1 else items.pop(0)
        if key in parent or items or op in ("$push", "$addToSet"):
            parent[key] = items
