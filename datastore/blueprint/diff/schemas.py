"""The walk of ``datastore diff`` through schemas: ``components/schemas`` by name, then
properties, ``additionalProperties``, ``items`` and composition items present on both sides;
each pair of schemas (references followed) is compared once, by keywords.py and
structure.py."""

from __future__ import annotations

from typing import Any

from datastore.blueprint.diff.endpoints import COMPONENTS
from datastore.blueprint.diff.keywords import (
    SchemaPair,
    check_bounds,
    check_constraints,
    check_default,
    check_enum,
    check_source,
    check_type,
)
from datastore.blueprint.diff.nodes import mapping, node_at, resolve
from datastore.blueprint.diff.record import Recorder
from datastore.blueprint.diff.structure import (
    COMPOSITIONS,
    check_additional,
    check_compositions,
    check_properties,
    check_required,
    parallel,
)
from datastore.blueprint.loader import Pointer

CHECKS = (
    check_source,
    check_type,
    check_enum,
    check_constraints,
    check_bounds,
    check_required,
    check_properties,
    check_additional,
    check_default,
    check_compositions,
)


class SchemaComparison:
    """Compares schemas OLD against NEW into a Recorder, each pair of schemas once."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.seen: set[tuple[Pointer, Pointer]] = set()

    def components(self, users: dict[str, frozenset[str]]) -> None:
        """Every ``components/schemas`` entry present on both sides, by name; ``users``:
        component name → the collections whose documents it describes."""
        old_schemas = node_at(self.rec.old.document, COMPONENTS) or {}
        new_schemas = node_at(self.rec.new.document, COMPONENTS) or {}
        if not isinstance(old_schemas, dict) or not isinstance(new_schemas, dict):
            return
        for name in new_schemas:
            if name in old_schemas:
                pointer = (*COMPONENTS, name)
                self.compare(pointer, pointer, f"schema {name}", users.get(name, frozenset()))

    def compare(self, old: Pointer, new: Pointer, where: str, users: frozenset[str]) -> None:
        """Compare two schemas (references followed), recursing into properties and items.
        Two references to the same component are left to the comparison of the components."""
        pair = self._pair(old, new, where, users)
        if pair is None:
            return
        for check in CHECKS:
            check(self.rec, pair)
        self._subschemas(pair)

    def _pair(
        self, old: Pointer, new: Pointer, where: str, users: frozenset[str]
    ) -> SchemaPair | None:
        """The two schemas, unless they are the same component or were compared already."""
        old_document, new_document = self.rec.old.document, self.rec.new.document
        if _same_component(node_at(old_document, old), node_at(new_document, new)):
            return None
        old, before = resolve(old_document, old)
        new, after = resolve(new_document, new)
        if (old, new) in self.seen or not isinstance(before, dict) or not isinstance(after, dict):
            return None
        self.seen.add((old, new))
        return SchemaPair(old, new, before, after, where, users)

    def _subschemas(self, pair: SchemaPair) -> None:
        """Properties, ``additionalProperties``, ``items`` and composition items present on
        both sides (compositions of one length, item by item)."""
        old, new, where, users = pair.old, pair.new, pair.where, pair.users
        after = mapping(pair.after, "properties")
        for name in mapping(pair.before, "properties"):
            if name in after:
                self.compare(
                    (*old, "properties", name), (*new, "properties", name), f"{where}.{name}", users
                )
        for key, shown in (("additionalProperties", f"{where}.*"), ("items", f"{where}[]")):
            if isinstance(pair.before.get(key), dict) and isinstance(pair.after.get(key), dict):
                self.compare((*old, key), (*new, key), shown, users)
        for key in COMPOSITIONS:
            a, b = pair.before.get(key), pair.after.get(key)
            if parallel(a, b):
                for i in range(len(a)):
                    self.compare((*old, key, i), (*new, key, i), f"{where} {key}[{i}]", users)


def _same_component(old: Any, new: Any) -> bool:
    ref = old.get("$ref") if isinstance(old, dict) else None
    return (
        isinstance(ref, str)
        and ref.startswith("#/components/schemas/")
        and isinstance(new, dict)
        and new.get("$ref") == ref
    )
