"""One operation present in OLD and NEW, compared by ``datastore diff``: its access (access.py),
parameters, request body and responses; their schemas go to schemas.py."""

from __future__ import annotations

from typing import Any

from datastore.blueprint.diff.access import compare_access
from datastore.blueprint.diff.changes import ChangeKind
from datastore.blueprint.diff.endpoints import Op, collection_of
from datastore.blueprint.diff.nodes import json_media, resolve
from datastore.blueprint.diff.record import Recorder
from datastore.blueprint.diff.schemas import SchemaComparison
from datastore.blueprint.loader import Pointer
from datastore.blueprint.model import split_path

Located = tuple[Pointer, Any]
"""A node (references followed) and its pointer."""

Parameters = dict[tuple[str, str], tuple[Pointer, dict[str, Any]]]
"""(in, name) → (pointer, parameter); path parameters keyed by their position."""


class OperationComparison:
    """Compares operations OLD against NEW into a Recorder."""

    def __init__(self, rec: Recorder, schemas: SchemaComparison) -> None:
        self.rec = rec
        self.schemas = schemas

    def compare(self, old: Op, new: Op) -> None:
        """One operation present on both sides (same method, same or renamed path)."""
        compare_access(self.rec, old, new)
        self._parameters(old, new)
        self._request(old, new)
        self._responses(old, new)

    def _parameters(self, old: Op, new: Op) -> None:
        old_p = _declared_parameters(self.rec.old.document, old)
        new_p = _declared_parameters(self.rec.new.document, new)
        for key, (pointer, param) in old_p.items():
            if key not in new_p:
                shown = f"{new.name}: {key[0]} parameter {param['name']} removed"
                self.rec.add("old", pointer, "breaking", "parameter-removed", shown)
        for key, (pointer, param) in new_p.items():
            label = f"{new.name}: {key[0]} parameter {param['name']}"
            if key in old_p:
                self._parameter(old_p[key], (pointer, param), label)
            elif param.get("required") is True:
                self.rec.add(
                    "new", pointer, "breaking", "parameter-required", f"{label} added, required"
                )
            else:
                self.rec.add("new", pointer, "compatible", "parameter-added", f"{label} added")

    def _parameter(
        self, old: tuple[Pointer, dict[str, Any]], new: tuple[Pointer, dict[str, Any]], label: str
    ) -> None:
        (old_pointer, old_param), (pointer, param) = old, new
        if param.get("required") is True and old_param.get("required") is not True:
            shown = f"{label} becomes required"
            self.rec.add("new", (*pointer, "required"), "breaking", "parameter-required", shown)
        if "schema" in param and "schema" in old_param:
            self.schemas.compare((*old_pointer, "schema"), (*pointer, "schema"), label, frozenset())

    def _request(self, old: Op, new: Op) -> None:
        name = new.name
        old_ptr, old_body = resolve(self.rec.old.document, (*old.pointer, "requestBody"))
        new_ptr, new_body = resolve(self.rec.new.document, (*new.pointer, "requestBody"))
        if not isinstance(new_body, dict):
            if isinstance(old_body, dict):
                shown = f"{name}: request body removed"
                self.rec.add("old", old_ptr, "breaking", "request-body-removed", shown)
            return
        if not isinstance(old_body, dict):
            required = new_body.get("required") is True
            shown = f"{name}: request body added" + (", required" if required else "")
            kind: ChangeKind = "breaking" if required else "compatible"
            self.rec.add("new", new_ptr, kind, "request-body-added", shown)
            return
        if new_body.get("required") is True and old_body.get("required") is not True:
            shown = f"{name}: request body becomes required"
            self.rec.add("new", (*new_ptr, "required"), "breaking", "request-body-required", shown)
        users = _users(new)
        self._json_bodies((old_ptr, old_body), (new_ptr, new_body), f"{name} request body", users)

    def _responses(self, old: Op, new: Op) -> None:
        old_r = old.spec.get("responses") or {}
        new_r = new.spec.get("responses") or {}
        for code in old_r:
            if code not in new_r:
                pointer = (*old.pointer, "responses", code, "<key>")
                shown = f"{new.name}: response {code} removed"
                self.rec.add("old", pointer, "breaking", "response-removed", shown)
        for code in new_r:
            if code in old_r:
                self._response(old, new, code)
            else:
                pointer = (*new.pointer, "responses", code, "<key>")
                shown = f"{new.name}: response {code} added"
                self.rec.add("new", pointer, "compatible", "response-added", shown)

    def _response(self, old: Op, new: Op, code: Any) -> None:
        old_ptr, old_resp = resolve(self.rec.old.document, (*old.pointer, "responses", code))
        new_ptr, new_resp = resolve(self.rec.new.document, (*new.pointer, "responses", code))
        if json_media(old_resp) and not json_media(new_resp):
            shown = f"{new.name}: response {code} no longer has a JSON body"
            self.rec.add("old", old_ptr, "breaking", "response-removed", shown)
            return
        users = _users(new) if str(code).startswith("2") else frozenset()
        where = f"{new.name} response {code}"
        self._json_bodies((old_ptr, old_resp), (new_ptr, new_resp), where, users)

    def _json_bodies(self, old: Located, new: Located, where: str, users: frozenset[str]) -> None:
        """The JSON schemas of two request bodies or responses, when both have one."""
        old_media, new_media = json_media(old[1]), json_media(new[1])
        if old_media and new_media:
            self.schemas.compare(
                (*old[0], "content", old_media, "schema"),
                (*new[0], "content", new_media, "schema"),
                where,
                users,
            )


def _users(op: Op) -> frozenset[str]:
    """The collection whose documents the operation's bodies carry, if any."""
    collection = collection_of(op.path, op.kind)
    return frozenset({collection}) if collection else frozenset()


def _declared_parameters(document: dict[str, Any], op: Op) -> Parameters:
    """The parameters of ``op``: its path item's, then its own (which win)."""
    positions = {s.param: str(i) for i, s in enumerate(split_path(op.path)) if s.param}
    out: Parameters = {}
    lists = [
        ((*op.pointer[:-1], "parameters"), op.path_params),
        ((*op.pointer, "parameters"), tuple(op.spec.get("parameters") or ())),
    ]
    for base, params in lists:
        for index in range(len(params)):
            pointer, param = resolve(document, (*base, index))
            if not isinstance(param, dict) or "name" not in param:
                continue
            where = str(param.get("in", ""))
            key = str(param["name"])
            if where == "path":
                key = positions.get(key, key)
            out[(where, key)] = (pointer, param)
    return out
