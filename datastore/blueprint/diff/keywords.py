"""What one schema's own keywords say, OLD against NEW (``datastore diff``): the values it
allows (``type``, ``enum``/``const``, ``pattern``, ``format``, ``multipleOf``, bounds and
lengths), its ``default`` and its source mapping. A narrowing is breaking, and a data change
too where stored documents are validated against or shown through the schema; a widening is
compatible. Object keywords are in structure.py, the walk into subschemas in schemas.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datastore.blueprint.diff.nodes import text
from datastore.blueprint.diff.record import Recorder, Side
from datastore.blueprint.loader import Pointer

SOURCE_KEY = "x-datastore-source"
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
CONSTRAINTS = ("pattern", "format", "multipleOf")


@dataclass(frozen=True)
class SchemaPair:
    """One schema in OLD and NEW, references followed: pointers, nodes, how messages name it
    and the collections whose stored documents it describes (``users``)."""

    old: Pointer
    new: Pointer
    before: dict[str, Any]
    after: dict[str, Any]
    where: str
    users: frozenset[str]

    def side(self, in_new: bool) -> tuple[Side, Pointer]:
        """Where to locate a keyword: in NEW when it is there, else in OLD."""
        return ("new", self.new) if in_new else ("old", self.old)


def check_source(rec: Recorder, pair: SchemaPair) -> None:
    a, b = pair.before.get(SOURCE_KEY), pair.after.get(SOURCE_KEY)
    if a != b:
        side, pointer = pair.side(b is not None)
        shown = f"{pair.where}: source mapping {a or 'none'} → {b or 'none'}"
        rec.add(side, (*pointer, SOURCE_KEY), "breaking", "source-changed", shown)


def check_type(rec: Recorder, pair: SchemaPair) -> None:
    a, b = _types(pair.before), _types(pair.after)
    if a == b:
        return
    shown = f"{pair.where}: type {_names(a)} → {_names(b)}"
    if b is None:
        rec.add("new", pair.new, "compatible", "type-widened", shown)
        return
    pointer = (*pair.new, "type") if "type" in pair.after else (*pair.new, "nullable")
    if a is None or any(not _covers(b, t) for t in a):
        rec.narrowed(pointer, "type-narrowed", shown, pair.users)
    else:
        rec.add("new", pointer, "compatible", "type-widened", shown)


def check_enum(rec: Recorder, pair: SchemaPair) -> None:
    a, b = _enum(pair.before), _enum(pair.after)
    where = pair.where
    pointer = (*pair.new, "enum" if "enum" in pair.after else "const")
    if b is None:
        if a is not None:
            rec.add("new", pair.new, "compatible", "enum-widened", f"{where}: enum removed")
        return
    if a is None:
        rec.narrowed(pointer, "enum-narrowed", f"{where}: values limited to {text(b)}", pair.users)
        return
    kept = {text(v) for v in b}
    lost = [v for v in a if text(v) not in kept]
    gained = [v for v in b if text(v) not in {text(x) for x in a}]
    if lost:
        shown = f"{where}: values {text(lost)} no longer allowed"
        rec.narrowed(pointer, "enum-narrowed", shown, pair.users)
    if gained:
        shown = f"{where}: values {text(gained)} allowed"
        rec.add("new", pointer, "compatible", "enum-widened", shown)


def check_constraints(rec: Recorder, pair: SchemaPair) -> None:
    for key in CONSTRAINTS:
        a, b = pair.before.get(key), pair.after.get(key)
        if a == b:
            continue
        if b is None:
            shown = f"{pair.where}: {key} {text(a)} removed"
            rec.add("new", pair.new, "compatible", f"{key}-removed", shown)
        else:
            shown = f"{pair.where}: {key} {text(a) if a is not None else 'none'} → {text(b)}"
            rec.narrowed((*pair.new, key), f"{key}-narrowed", shown, pair.users)


def check_bounds(rec: Recorder, pair: SchemaPair) -> None:
    for key in (*LOWER_BOUNDS, *UPPER_BOUNDS):
        a, b = pair.before.get(key), pair.after.get(key)
        if a == b:
            continue
        shown = f"{pair.where}: {key} {_bound(a)} → {_bound(b)}"
        if _tighter(key, a, b):
            rec.narrowed((*pair.new, key), "bound-narrowed", shown, pair.users)
        else:
            pointer = (*pair.new, key) if b is not None else pair.new
            rec.add("new", pointer, "compatible", "bound-widened", shown)


def check_default(rec: Recorder, pair: SchemaPair) -> None:
    """A changed ``default`` shows in documents stored without a value."""
    o, n, where = pair.before, pair.after, pair.where
    if "default" in o and "default" in n and text(o["default"]) != text(n["default"]):
        rec.add(
            "new",
            (*pair.new, "default"),
            "data",
            "default-changed",
            f"{where}: default {text(o['default'])} → {text(n['default'])} (documents "
            "without a value show the new one)",
        )
    elif ("default" in o) != ("default" in n) and pair.users:
        side, pointer = pair.side("default" in n)
        shown = f"{where}: default {text(o.get('default'))} → {text(n.get('default'))}"
        rec.add(side, (*pointer, "default"), "data", "default-changed", shown)


def _types(node: dict[str, Any]) -> frozenset[str] | None:
    kind = node.get("type")
    if kind is None:
        return None
    names = (
        {kind}
        if isinstance(kind, str)
        else {str(k) for k in kind}
        if isinstance(kind, list)
        else set()
    )
    if node.get("nullable") is True:
        names.add("null")
    return frozenset(names)


def _covers(types: frozenset[str], name: str) -> bool:
    return name in types or (name == "integer" and "number" in types)


def _names(types: frozenset[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types)) or "none"


def _enum(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    values = node.get("enum")
    return list(values) if isinstance(values, list) else None


def _bound(value: Any) -> str:
    return "none" if value is None else text(value)


def _tighter(key: str, a: Any, b: Any) -> bool:
    """Whether the bound ``key`` is tighter at ``b`` than at ``a`` (``None``: no bound)."""
    if isinstance(a, bool) or isinstance(b, bool):  # OpenAPI 3.0 exclusiveMinimum: true
        return b is True
    if b is None:
        return False
    if a is None:
        return True
    return bool(b > a) if key in LOWER_BOUNDS else bool(b < a)
