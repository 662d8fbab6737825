"""What one schema's structure keywords say, OLD against NEW (``datastore diff``):
``required``, properties removed or added, ``additionalProperties``, ``allOf``/``anyOf``/
``oneOf`` and ``not``. Subschemas present on both sides are walked by schemas.py."""

from __future__ import annotations

from typing import Any, TypeGuard

from datastore.blueprint.diff.keywords import SchemaPair
from datastore.blueprint.diff.nodes import mapping, strings, text
from datastore.blueprint.diff.record import Recorder

COMPOSITIONS = ("allOf", "anyOf", "oneOf")


def parallel(old: Any, new: Any) -> TypeGuard[list[Any]]:
    """Whether two composition lists are compared item by item (both lists, same length)."""
    return isinstance(old, list) and isinstance(new, list) and len(old) == len(new)


def check_required(rec: Recorder, pair: SchemaPair) -> None:
    a, b = strings(pair.before, "required"), pair.after.get("required")
    old_props = mapping(pair.before, "properties")
    for index, name in enumerate(b if isinstance(b, list) else []):
        if not isinstance(name, str) or name in a:
            continue
        what = "new property" if name not in old_props else "property"
        shown = f"{pair.where}: {what} {name} becomes required"
        rec.narrowed((*pair.new, "required", index), "property-required", shown, pair.users)
    for name in a:
        if name not in strings(pair.after, "required"):
            shown = f"{pair.where}: property {name} no longer required"
            rec.add("new", pair.new, "compatible", "property-optional", shown)


def check_properties(rec: Recorder, pair: SchemaPair) -> None:
    """Properties removed, and optional properties added (a required one is in
    check_required)."""
    a, b = mapping(pair.before, "properties"), mapping(pair.after, "properties")
    for name in a:
        if name not in b:
            _property_removed(rec, pair, name)
    required = strings(pair.after, "required")
    for name in b:
        if name not in a and name not in required:
            pointer = (*pair.new, "properties", name, "<key>")
            shown = f"{pair.where}: optional property {name} added"
            rec.add("new", pointer, "compatible", "property-added", shown)


def _property_removed(rec: Recorder, pair: SchemaPair, name: str) -> None:
    pointer = (*pair.old, "properties", name, "<key>")
    where = pair.where
    rec.add("old", pointer, "breaking", "property-removed", f"{where}: property {name} removed")
    if pair.after.get("additionalProperties") is False and pair.users:
        rec.add(
            "old",
            pointer,
            "data",
            "property-removed",
            f"{where}: property {name} removed and additionalProperties is "
            f"false: stored documents of {', '.join(sorted(pair.users))} that have it "
            "no longer validate (datastore check-data lists them)",
        )


def check_additional(rec: Recorder, pair: SchemaPair) -> None:
    a, b = pair.before.get("additionalProperties"), pair.after.get("additionalProperties")
    if b is False and a is not False:
        rec.narrowed(
            (*pair.new, "additionalProperties"),
            "additional-properties-closed",
            f"{pair.where}: additionalProperties closed (false)",
            pair.users,
        )
    elif a is False and b is not False:
        shown = f"{pair.where}: additionalProperties opened"
        rec.add("new", pair.new, "compatible", "additional-properties-opened", shown)


def check_compositions(rec: Recorder, pair: SchemaPair) -> None:
    """``allOf``/``anyOf``/``oneOf`` changed other than item by item, or ``not`` changed."""
    for key in COMPOSITIONS:
        a, b = pair.before.get(key), pair.after.get(key)
        if not parallel(a, b) and text(a) != text(b):
            pointer = (*pair.new, key) if b is not None else pair.new
            shown = f"{pair.where}: {key} changed"
            rec.narrowed(pointer, "composition-changed", shown, pair.users)
    a, b = pair.before.get("not"), pair.after.get("not")
    if text(a) != text(b) and b is not None:
        shown = f"{pair.where}: not changed"
        rec.narrowed((*pair.new, "not"), "composition-changed", shown, pair.users)
