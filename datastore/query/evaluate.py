"""The reference evaluator of the query tree: ``ast``'s documented semantics in plain Python.

The SQL compiler is tested against it (random documents and random queries must give the same
answers), so it is written for clarity, independently of SQL. One request path uses it too: a
change feed's ``q`` / ``filters`` are matched here against each delivered document
(``http/changes.py``), which its agreement with the SQL of listings keeps consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from datastore.clock import format_datetime
from datastore.jsonvalues import json_type, with_defaults
from datastore.query import ast, regex

MISSING: Any = object()
_RANK = {"null": 0, "number": 1, "string": 2, "object": 3, "array": 4, "boolean": 5}


def equal(a: Any, b: Any) -> bool:
    """JSON equality: same type, same value (structurally; objects whatever their key order,
    as PostgreSQL's ``jsonb`` compares them)."""
    kind = json_type(a)
    if kind != json_type(b):
        return False
    if kind == "array":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "object":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _ordered(a: Any, op: str, b: Any, *, booleans: bool = True) -> bool:
    kind = json_type(a)
    ordered_types = ("number", "string", "boolean") if booleans else ("number", "string")
    if kind != json_type(b) or kind not in ordered_types:
        return False
    results: dict[str, bool] = {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}
    return results[op]


def scalar_compare(a: Any, op: str, b: Any, *, booleans: bool = True) -> bool:
    """One comparison of two present values (``booleans``: whether false < true orders)."""
    if op == "eq":
        return equal(a, b)
    if op == "ne":
        return not equal(a, b)
    return _ordered(a, op, b, booleans=booleans)


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` (MISSING when absent)."""
    value = document
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def _any(value: Any, test: Any) -> bool:
    if value is MISSING:
        return False
    if test(value):
        return True
    return isinstance(value, list) and any(test(v) for v in value)


def _field_value(
    operand: ast.Operand,
    document: Any,
    sources: Mapping[str, Any],
    defaults: Mapping[tuple[str, ...], Any],
) -> Any:
    if isinstance(operand, ast.Source):
        return sources.get(operand.name, MISSING)
    return lookup(with_defaults(document, defaults), operand.path)


def _rule_value(
    operand: ast.Operand,
    document: Any,
    sources: Mapping[str, Any],
    defaults: Mapping[tuple[str, ...], Any],
) -> Any:
    """A value as the strict (rule) comparisons see it: a source as GET shows it, a datetime
    as ``format_datetime`` text and no ``$extends`` as ``""``."""
    if not isinstance(operand, ast.Source):
        return _field_value(operand, document, sources, defaults)
    value = sources.get(operand.name, MISSING)
    if isinstance(value, datetime):
        return format_datetime(value)
    if operand.name == "$extends" and (value is MISSING or not value):
        return ""
    return value


def matches(
    node: ast.Node,
    document: Any,
    sources: Mapping[str, Any] | None = None,
    defaults: Mapping[tuple[str, ...], Any] | None = None,
) -> bool:
    """Whether ``document`` (with its source values and schema ``defaults``, by property path)
    satisfies ``node``."""
    src = sources or {}
    dft = defaults or {}
    if isinstance(node, ast.Const):
        return node.value
    if isinstance(node, ast.And):
        return all(matches(i, document, src, dft) for i in node.items)
    if isinstance(node, ast.Or):
        return any(matches(i, document, src, dft) for i in node.items)
    if isinstance(node, ast.Not):
        return not matches(node.item, document, src, dft)
    if isinstance(node, ast.CompareFields):
        left = _rule_value(node.left, document, src, dft)
        right = _rule_value(node.right, document, src, dft)
        present = left is not MISSING and right is not MISSING
        return present and scalar_compare(left, node.op, right, booleans=False)
    value = _field_value(node.field, document, src, dft)
    if isinstance(node, ast.Exists):
        return (value is not MISSING) == node.exists
    if isinstance(node, ast.Compare):
        if not node.elementwise:
            value = _rule_value(node.field, document, src, dft)
            present = value is not MISSING
            return present and scalar_compare(value, node.op, node.value, booleans=False)
        if isinstance(node.field, ast.Source) and isinstance(value, datetime):
            return _compare_datetime(value, node.op, node.value)
        if node.op == "ne":
            return not matches(ast.Compare(node.field, "eq", node.value), document, src, dft)
        if node.op == "eq" and node.value is None:
            return value is MISSING or _any(value, lambda v: v is None)
        return _any(value, lambda v: scalar_compare(v, node.op, node.value))
    if isinstance(node, ast.In):
        return any(
            matches(ast.Compare(node.field, "eq", v), document, src, dft) for v in node.values
        )
    if isinstance(node, ast.Regex):
        pattern = regex.normalise(node.pattern, node.flags)
        return _any(value, lambda v: isinstance(v, str) and regex.search(pattern, v))
    if isinstance(node, ast.StringMatch):
        if node.kind == "prefix":
            return _any(value, lambda v: isinstance(v, str) and v.startswith(node.value))
        return _any(value, lambda v: isinstance(v, str) and v.endswith(node.value))
    if isinstance(node, ast.ArrayAll):
        return (
            isinstance(value, list)
            and bool(node.values)
            and all(any(equal(e, v) for e in value) for v in node.values)
        )
    if isinstance(node, ast.ArrayWithin):
        return isinstance(value, list) and all(any(equal(e, v) for v in node.values) for e in value)
    if isinstance(node, ast.ArraySize):
        return isinstance(value, list) and len(value) == node.size
    if isinstance(node, ast.ElemMatch):
        return isinstance(value, list) and any(
            matches(node.query, element, {}, {}) for element in value
        )
    raise AssertionError(node)


def _compare_datetime(value: datetime, op: str, other: Any) -> bool:
    moment = ast.as_datetime(other)
    if moment is None:
        return op == "ne"
    return scalar_compare(value.timestamp(), op, moment.timestamp())


def sort_key(value: Any) -> tuple[Any, ...]:
    """The order of one value: type rank, then value (missing counts as null)."""
    if value is MISSING:
        value = None
    kind = json_type(value)
    rank = _RANK[kind]
    if kind == "number":
        return (rank, value, "", 0, "")
    if kind == "string":
        return (rank, 0, value, 0, "")
    if kind == "boolean":
        return (rank, 0, "", int(value), "")
    if kind in ("object", "array"):
        return (rank, 0, "", 0, "")
    return (rank, 0, "", 0, "")
