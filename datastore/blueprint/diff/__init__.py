"""Comparing two blueprints: every change, classified, with where it is (``datastore diff``).

Four kinds of change (docs/evolving.md):

- ``breaking``: breaks clients — a collection, path, operation, property, parameter or response
  removed; a property or parameter becomes required; a type, ``enum``, ``pattern``, ``format``,
  bound or length narrowed; ``additionalProperties`` closed; a source mapping changed; a path
  renamed.
- ``data``: the same narrowings seen from the stored documents' side, for schemas the
  documents of a collection are validated against or shown through (documents written before
  may not satisfy them: ``datastore check-data`` tells), a removed or renamed collection (its
  documents become orphans), and a changed ``default`` (documents relying on it show another
  value).
- ``access``: an ``x-datastore-acl`` rule (or ``security``) changed, old → new, ``tightened``,
  ``loosened`` or ``changed`` when that cannot be decided (decided: ``public`` to anything and
  back, a rule added to or removed from an operation protected by ``security``, an added or
  removed ``&&`` term, an added or removed ``||`` term).
- ``compatible``: additions and widenings.

Schemas are compared where they are written: ``components/schemas`` by name (each once), and
each operation's inline schemas; a slot whose ``$ref`` is the same on both sides is left to the
component comparison, a changed ``$ref`` is followed on both sides. Annotations (``title``,
``description``, ``example``...) are not changes. Locations are in NEW, or in OLD for removals.
"""

from __future__ import annotations

import json
from typing import Any

from datastore.blueprint.diff.access import acl_direction
from datastore.blueprint.diff.changes import (
    FAIL_LEVELS,
    Change,
    ChangeKind,
    Direction,
    fails,
    format_changes,
    summary,
)
from datastore.blueprint.diff.endpoints import (
    DOCUMENT_KINDS,
    Op,
    collection_of,
    component_users,
    document_schema_slots,
    operations,
    shape_key,
)
from datastore.blueprint.diff.keywords import SOURCE_KEY
from datastore.blueprint.diff.nodes import json_media, node_at, resolve, text
from datastore.blueprint.diff.record import Recorder
from datastore.blueprint.diff.schemas import SchemaComparison
from datastore.blueprint.loader import LoadedBlueprint, Pointer
from datastore.blueprint.model import classify, split_path

# -- the comparison -------------------------------------------------------------------------


class _Differ:
    def __init__(self, old: LoadedBlueprint, new: LoadedBlueprint) -> None:
        self.old = old
        self.new = new
        self.rec = Recorder(old, new)
        self.schemas = SchemaComparison(self.rec)
        self.users = component_users(new.document)

    # -- paths and operations

    def run(self) -> list[Change]:
        old_ops, new_ops = operations(self.old.document), operations(self.new.document)
        removed = [k for k in old_ops if k not in new_ops]
        added = [k for k in new_ops if k not in old_ops]
        renames = self._renames(old_ops, new_ops, removed, added)
        self._collections(old_ops, new_ops, renames)
        for key in removed:
            if key in renames:
                continue
            methods = old_ops[key]
            op = next(iter(methods.values()), None)
            if op is None:
                continue
            listed = ", ".join(m.upper() for m in methods)
            self.rec.add(
                "old",
                ("paths", op.path, "<key>"),
                "breaking",
                "path-removed",
                f"path {op.path} removed ({listed})",
            )
        renamed_to = set(renames.values())
        for key in added:
            if key in renamed_to:
                continue
            methods = new_ops[key]
            op = next(iter(methods.values()), None)
            if op is None:
                continue
            listed = ", ".join(m.upper() for m in methods)
            self.rec.add(
                "new",
                ("paths", op.path, "<key>"),
                "compatible",
                "path-added",
                f"path {op.path} added ({listed})",
            )
        for old_key, new_key in [*((k, k) for k in old_ops if k in new_ops), *renames.items()]:
            self._path(old_ops[old_key], new_ops[new_key])
        self.schemas.components(self.users)
        return sorted(self.rec.changes)

    def _renames(
        self,
        old_ops: dict[str, dict[str, Op]],
        new_ops: dict[str, dict[str, Op]],
        removed: list[str],
        added: list[str],
    ) -> dict[str, str]:
        """Removed shape → added shape, when the added path is the removed one with other
        literal segments and the same operations."""
        renames: dict[str, str] = {}
        for old_key in removed:
            for new_key in added:
                if new_key in renames.values():
                    continue
                a, b = old_ops[old_key], new_ops[new_key]
                if (
                    len(split_path(old_key)) == len(split_path(new_key))
                    and set(a) == set(b)
                    and a
                    and all(text(a[m].spec) == text(b[m].spec) for m in a)
                    and classify(split_path(old_key)) == classify(split_path(new_key))
                ):
                    renames[old_key] = new_key
                    break
        return renames

    def _collections(
        self,
        old_ops: dict[str, dict[str, Op]],
        new_ops: dict[str, dict[str, Op]],
        renames: dict[str, str],
    ) -> None:
        def collections(ops: dict[str, dict[str, Op]]) -> dict[str, Op]:
            out: dict[str, Op] = {}
            for key, methods in ops.items():
                for op in methods.values():
                    name = collection_of(key, op.kind)
                    if name is not None:
                        out.setdefault(name, op)
            return out

        old_c, new_c = collections(old_ops), collections(new_ops)
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
                where = new_c[target]
                self.rec.add(
                    "new",
                    ("paths", where.path, "<key>"),
                    "breaking",
                    "path-renamed",
                    f"collection {name} renamed to {target}",
                )
                self.rec.add(
                    "new",
                    ("paths", where.path, "<key>"),
                    "data",
                    "path-renamed",
                    f"documents stored in {name} are not served at "
                    f"{target}: they become orphans "
                    "(datastore check-data lists them)",
                )
                continue
            self.rec.add(
                "old",
                ("paths", op.path, "<key>"),
                "breaking",
                "collection-removed",
                f"collection {name} removed",
            )
            self.rec.add(
                "old",
                ("paths", op.path, "<key>"),
                "data",
                "collection-removed",
                f"documents stored in {name} become orphans (datastore check-data lists them)",
            )
        for name, op in new_c.items():
            if name not in old_c and name not in renamed.values():
                self.rec.add(
                    "new",
                    ("paths", op.path, "<key>"),
                    "compatible",
                    "collection-added",
                    f"collection {name} added",
                )

    def _path(self, old: dict[str, Op], new: dict[str, Op]) -> None:
        some_old, some_new = next(iter(old.values()), None), next(iter(new.values()), None)
        if some_old and some_new and some_old.path != some_new.path:
            if shape_key(some_old.path) == shape_key(some_new.path):
                self.rec.add(
                    "new",
                    ("paths", some_new.path, "<key>"),
                    "compatible",
                    "path-parameter-renamed",
                    f"path {some_old.path} is now written {some_new.path} (same URLs)",
                )
            elif some_new.kind not in DOCUMENT_KINDS:  # collections: reported once, renamed
                self.rec.add(
                    "new",
                    ("paths", some_new.path, "<key>"),
                    "breaking",
                    "path-renamed",
                    f"path {some_old.path} renamed to {some_new.path}",
                )
        if some_old and some_new:
            old_idx = node_at(self.old.document, ("paths", some_old.path, "x-datastore-indexes"))
            new_idx = node_at(self.new.document, ("paths", some_new.path, "x-datastore-indexes"))
            if text(old_idx) != text(new_idx):
                self.rec.add(
                    "new",
                    ("paths", some_new.path),
                    "compatible",
                    "indexes-changed",
                    f"{some_new.path}: x-datastore-indexes changed (performance only)",
                )
        for method, op in old.items():
            if method not in new:
                self.rec.add(
                    "old",
                    (*op.pointer, "<key>"),
                    "breaking",
                    "operation-removed",
                    f"operation {method.upper()} {op.path} removed",
                )
        for method, op in new.items():
            if method not in old:
                self.rec.add(
                    "new",
                    (*op.pointer, "<key>"),
                    "compatible",
                    "operation-added",
                    f"operation {method.upper()} {op.path} added",
                )
            else:
                self._operation(old[method], op)

    def _operation(self, old: Op, new: Op) -> None:
        name = f"{new.method.upper()} {new.path}"
        self._access(old, new, name)
        self._parameters(old, new, name)
        self._request(old, new, name)
        self._responses(old, new, name)

    def _access(self, old: Op, new: Op, name: str) -> None:
        old_acl, new_acl = old.spec.get("x-datastore-acl"), new.spec.get("x-datastore-acl")
        old_text = None if old_acl is None else str(old_acl)
        new_text = None if new_acl is None else str(new_acl)
        direction = acl_direction(old_text, new_text)
        if direction:
            pointer = (*new.pointer, "x-datastore-acl") if new_text is not None else new.pointer
            shown = f"{_rule(old_text)} → {_rule(new_text)}"
            self.rec.add(
                "new",
                pointer,
                "access",
                "acl-changed",
                f"{name}: rule {shown}",
                direction=direction,
                old=old_text,
                new=new_text,
            )
        old_sec = old.spec.get("security", self.old.document.get("security"))
        new_sec = new.spec.get("security", self.new.document.get("security"))
        if text(old_sec) != text(new_sec):
            pointer = (*new.pointer, "security") if "security" in new.spec else new.pointer
            self.rec.add(
                "new",
                pointer,
                "access",
                "security-changed",
                f"{name}: security {text(old_sec)} → {text(new_sec)}",
                direction="changed",
                old=text(old_sec),
                new=text(new_sec),
            )

    def _params(
        self, side: LoadedBlueprint, op: Op
    ) -> dict[tuple[str, str], tuple[Pointer, dict[str, Any]]]:
        """(in, name) → (pointer, parameter); path parameters keyed by their position."""
        positions = {s.param: str(i) for i, s in enumerate(split_path(op.path)) if s.param}
        out: dict[tuple[str, str], tuple[Pointer, dict[str, Any]]] = {}
        lists = [
            ((*op.pointer[:-1], "parameters"), op.path_params),
            ((*op.pointer, "parameters"), tuple(op.spec.get("parameters") or ())),
        ]
        for base, params in lists:
            for index in range(len(params)):
                pointer, param = resolve(side.document, (*base, index))
                if not isinstance(param, dict) or "name" not in param:
                    continue
                where = str(param.get("in", ""))
                key = str(param["name"])
                if where == "path":
                    key = positions.get(key, key)
                out[(where, key)] = (pointer, param)
        return out

    def _parameters(self, old: Op, new: Op, name: str) -> None:
        old_p, new_p = self._params(self.old, old), self._params(self.new, new)
        for key, (pointer, param) in old_p.items():
            if key not in new_p:
                self.rec.add(
                    "old",
                    pointer,
                    "breaking",
                    "parameter-removed",
                    f"{name}: {key[0]} parameter {param['name']} removed",
                )
        for key, (pointer, param) in new_p.items():
            label = f"{name}: {key[0]} parameter {param['name']}"
            if key not in old_p:
                if param.get("required") is True:
                    self.rec.add(
                        "new",
                        pointer,
                        "breaking",
                        "parameter-required",
                        f"{label} added, required",
                    )
                else:
                    self.rec.add("new", pointer, "compatible", "parameter-added", f"{label} added")
                continue
            old_pointer, old_param = old_p[key]
            if param.get("required") is True and old_param.get("required") is not True:
                self.rec.add(
                    "new",
                    (*pointer, "required"),
                    "breaking",
                    "parameter-required",
                    f"{label} becomes required",
                )
            if "schema" in param and "schema" in old_param:
                self.schemas.compare(
                    (*old_pointer, "schema"), (*pointer, "schema"), label, frozenset()
                )

    def _request(self, old: Op, new: Op, name: str) -> None:
        old_ptr, old_body = resolve(self.old.document, (*old.pointer, "requestBody"))
        new_ptr, new_body = resolve(self.new.document, (*new.pointer, "requestBody"))
        if not isinstance(old_body, dict) and not isinstance(new_body, dict):
            return
        if not isinstance(new_body, dict):
            self.rec.add(
                "old",
                old_ptr,
                "breaking",
                "request-body-removed",
                f"{name}: request body removed",
            )
            return
        if not isinstance(old_body, dict):
            required = new_body.get("required") is True
            self.rec.add(
                "new",
                new_ptr,
                "breaking" if required else "compatible",
                "request-body-added",
                f"{name}: request body added" + (", required" if required else ""),
            )
            return
        if new_body.get("required") is True and old_body.get("required") is not True:
            self.rec.add(
                "new",
                (*new_ptr, "required"),
                "breaking",
                "request-body-required",
                f"{name}: request body becomes required",
            )
        old_media, new_media = json_media(old_body), json_media(new_body)
        if old_media and new_media:
            collection = collection_of(new.path, new.kind)
            self.schemas.compare(
                (*old_ptr, "content", old_media, "schema"),
                (*new_ptr, "content", new_media, "schema"),
                f"{name} request body",
                frozenset({collection}) if collection else frozenset(),
            )

    def _responses(self, old: Op, new: Op, name: str) -> None:
        old_r = old.spec.get("responses") or {}
        new_r = new.spec.get("responses") or {}
        for code in old_r:
            if code not in new_r:
                self.rec.add(
                    "old",
                    (*old.pointer, "responses", code, "<key>"),
                    "breaking",
                    "response-removed",
                    f"{name}: response {code} removed",
                )
        for code in new_r:
            if code not in old_r:
                self.rec.add(
                    "new",
                    (*new.pointer, "responses", code, "<key>"),
                    "compatible",
                    "response-added",
                    f"{name}: response {code} added",
                )
                continue
            old_ptr, old_resp = resolve(self.old.document, (*old.pointer, "responses", code))
            new_ptr, new_resp = resolve(self.new.document, (*new.pointer, "responses", code))
            old_media, new_media = json_media(old_resp), json_media(new_resp)
            if old_media and not new_media:
                self.rec.add(
                    "old",
                    old_ptr,
                    "breaking",
                    "response-removed",
                    f"{name}: response {code} no longer has a JSON body",
                )
            elif old_media and new_media:
                collection = collection_of(new.path, new.kind)
                documents = str(code).startswith("2") and collection is not None
                self.schemas.compare(
                    (*old_ptr, "content", old_media, "schema"),
                    (*new_ptr, "content", new_media, "schema"),
                    f"{name} response {code}",
                    frozenset({collection}) if documents and collection else frozenset(),
                )


def _rule(text: str | None) -> str:
    return "(none: any valid credential)" if text is None else json.dumps(text, ensure_ascii=False)


def compare(old: LoadedBlueprint, new: LoadedBlueprint) -> list[Change]:
    """Every change from ``old`` to ``new``, sorted by location."""
    return _Differ(old, new).run()


__all__ = [
    "FAIL_LEVELS",
    "SOURCE_KEY",
    "Change",
    "ChangeKind",
    "Direction",
    "acl_direction",
    "compare",
    "document_schema_slots",
    "fails",
    "format_changes",
    "summary",
]
