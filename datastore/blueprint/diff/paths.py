"""Paths OLD against NEW (``datastore diff``): paths paired by shape (parameters unnamed),
renamed paths (other literal segments, the same operations), collections removed, renamed or
added, then each path's operations; operations present on both sides go to operations.py."""

from __future__ import annotations

from datastore.blueprint.diff.changes import ChangeKind
from datastore.blueprint.diff.endpoints import (
    DOCUMENT_KINDS,
    Op,
    Operations,
    collection_of,
    operations,
    shape_key,
)
from datastore.blueprint.diff.nodes import node_at, text
from datastore.blueprint.diff.operations import OperationComparison
from datastore.blueprint.diff.record import Recorder, Side
from datastore.blueprint.model import classify, split_path

Renames = dict[str, str]
"""Removed path shape → the added one it was renamed to."""


class PathComparison:
    """Compares the paths of two blueprints into a Recorder."""

    def __init__(self, rec: Recorder, operation_diff: OperationComparison) -> None:
        self.rec = rec
        self.operation_diff = operation_diff

    def run(self) -> None:
        """Every path and operation change, then each operation on both sides compared."""
        old_ops, new_ops = operations(self.rec.old.document), operations(self.rec.new.document)
        removed = [k for k in old_ops if k not in new_ops]
        added = [k for k in new_ops if k not in old_ops]
        renames = _renames(old_ops, new_ops, removed, added)
        compare_collections(self.rec, old_ops, new_ops, renames)
        removed = [k for k in removed if k not in renames]
        self._only_in("old", [old_ops[k] for k in removed], "breaking", "path-removed", "removed")
        added = [k for k in added if k not in renames.values()]
        self._only_in("new", [new_ops[k] for k in added], "compatible", "path-added", "added")
        for old_key, new_key in [*((k, k) for k in old_ops if k in new_ops), *renames.items()]:
            self._path(old_ops[old_key], new_ops[new_key])

    def _only_in(
        self, side: Side, paths: list[dict[str, Op]], kind: ChangeKind, rule: str, verb: str
    ) -> None:
        """Paths present on one side only, with their methods."""
        for methods in paths:
            op = next(iter(methods.values()), None)
            if op is not None:
                listed = ", ".join(m.upper() for m in methods)
                shown = f"path {op.path} {verb} ({listed})"
                self.rec.add(side, ("paths", op.path, "<key>"), kind, rule, shown)

    def _path(self, old: dict[str, Op], new: dict[str, Op]) -> None:
        """One path on both sides (same shape, or renamed): how it is written, its indexes,
        its operations."""
        some_old, some_new = next(iter(old.values()), None), next(iter(new.values()), None)
        if some_old and some_new:
            self._written(some_old.path, some_new)
            self._indexes(some_old.path, some_new.path)
        for method, op in old.items():
            if method not in new:
                shown = f"operation {method.upper()} {op.path} removed"
                self.rec.add("old", (*op.pointer, "<key>"), "breaking", "operation-removed", shown)
        for method, op in new.items():
            if method in old:
                self.operation_diff.compare(old[method], op)
            else:
                shown = f"operation {method.upper()} {op.path} added"
                self.rec.add("new", (*op.pointer, "<key>"), "compatible", "operation-added", shown)

    def _written(self, old_path: str, new: Op) -> None:
        """A path written otherwise: parameters renamed (same URLs), or a renamed path (a
        collection's is reported once, by compare_collections)."""
        if old_path == new.path:
            return
        pointer = ("paths", new.path, "<key>")
        if shape_key(old_path) == shape_key(new.path):
            shown = f"path {old_path} is now written {new.path} (same URLs)"
            self.rec.add("new", pointer, "compatible", "path-parameter-renamed", shown)
        elif new.kind not in DOCUMENT_KINDS:
            shown = f"path {old_path} renamed to {new.path}"
            self.rec.add("new", pointer, "breaking", "path-renamed", shown)

    def _indexes(self, old_path: str, new_path: str) -> None:
        old_idx = node_at(self.rec.old.document, ("paths", old_path, "x-datastore-indexes"))
        new_idx = node_at(self.rec.new.document, ("paths", new_path, "x-datastore-indexes"))
        if text(old_idx) != text(new_idx):
            shown = f"{new_path}: x-datastore-indexes changed (performance only)"
            self.rec.add("new", ("paths", new_path), "compatible", "indexes-changed", shown)


def _renames(
    old_ops: Operations, new_ops: Operations, removed: list[str], added: list[str]
) -> Renames:
    """Removed shape → added shape, when the added path is the removed one with other
    literal segments and the same operations."""
    renames: Renames = {}
    for old_key in removed:
        for new_key in added:
            if new_key not in renames.values() and _renamed(old_key, old_ops, new_key, new_ops):
                renames[old_key] = new_key
                break
    return renames


def _renamed(old_key: str, old_ops: Operations, new_key: str, new_ops: Operations) -> bool:
    old, new = old_ops[old_key], new_ops[new_key]
    return (
        len(split_path(old_key)) == len(split_path(new_key))
        and set(old) == set(new)
        and bool(old)
        and all(text(old[m].spec) == text(new[m].spec) for m in old)
        and classify(split_path(old_key)) == classify(split_path(new_key))
    )


def compare_collections(
    rec: Recorder, old_ops: Operations, new_ops: Operations, renames: Renames
) -> None:
    """Collections removed, renamed (their stored documents become orphans) or added."""
    old_c, new_c = _collections(old_ops), _collections(new_ops)
    renamed = {
        collection_of(o, k): collection_of(n, k)
        for o, n in renames.items()
        if (k := classify(split_path(o))) in DOCUMENT_KINDS
    }
    for name, op in old_c.items():
        if name in new_c:
            continue
        target = renamed.get(name)
        if target is not None and target in new_c:
            message = f"collection {name} renamed to {target}"
            orphans = f"documents stored in {name} are not served at {target}: they become orphans"
            _orphaned(rec, "new", new_c[target].path, "path-renamed", message, orphans)
        else:
            orphans = f"documents stored in {name} become orphans"
            _orphaned(
                rec, "old", op.path, "collection-removed", f"collection {name} removed", orphans
            )
    for name, op in new_c.items():
        if name not in old_c and name not in renamed.values():
            shown = f"collection {name} added"
            rec.add("new", ("paths", op.path, "<key>"), "compatible", "collection-added", shown)


def _collections(ops: Operations) -> dict[str, Op]:
    """Collection path template (parameters unnamed) → its first operation."""
    out: dict[str, Op] = {}
    for key, methods in ops.items():
        for op in methods.values():
            name = collection_of(key, op.kind)
            if name is not None:
                out.setdefault(name, op)
    return out


def _orphaned(rec: Recorder, side: Side, path: str, rule: str, message: str, orphans: str) -> None:
    """A breaking change, and the data change of the documents it leaves behind."""
    pointer = ("paths", path, "<key>")
    rec.add(side, pointer, "breaking", rule, message)
    rec.add(side, pointer, "data", rule, f"{orphans} (datastore check-data lists them)")
