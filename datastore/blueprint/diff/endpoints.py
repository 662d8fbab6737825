"""A blueprint's operations as ``datastore diff`` pairs them (by path shape, then method), and
which collections' stored documents each schema describes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from datastore.blueprint.diff.nodes import json_schema_at, node_at, ref_pointer
from datastore.blueprint.loader import Pointer
from datastore.blueprint.model import HTTP_METHODS, Kind, classify, split_path

DOCUMENT_KINDS = (Kind.COLLECTION, Kind.DOCUMENT)
COMPONENTS = ("components", "schemas")


@dataclass(frozen=True)
class Op:
    """One operation as written: its path template, method, kind of endpoint, pointer
    (``paths/PATH/METHOD``), its object and the path item's parameters."""

    path: str
    method: str
    kind: Kind | None
    pointer: Pointer
    spec: dict[str, Any]
    path_params: tuple[Any, ...]

    @property
    def name(self) -> str:
        """``GET /events/{id}``, as messages name it."""
        return f"{self.method.upper()} {self.path}"


Operations = dict[str, dict[str, Op]]
"""Path shape key → method → operation."""


def shape_key(path: str) -> str:
    """The path with its parameters unnamed: ``/events/{}``."""
    return "/" + "/".join("{}" if s.param else s.text for s in split_path(path))


def collection_of(path: str, kind: Kind | None) -> str | None:
    """The collection path template a collection or document endpoint works on."""
    if kind not in DOCUMENT_KINDS:
        return None
    segments = [s.text for s in split_path(path)]
    return "/" + "/".join(segments if kind is Kind.COLLECTION else segments[:-1])


def operations(document: dict[str, Any]) -> Operations:
    """Every operation, by path shape key and method."""
    out: Operations = {}
    paths = document.get("paths")
    for path, item in (paths if isinstance(paths, dict) else {}).items():
        if not isinstance(item, dict):
            continue
        kind = classify(split_path(path))
        params = tuple(item.get("parameters") or ())
        methods = {
            method: Op(path, method, kind, ("paths", path, method), spec, params)
            for method in HTTP_METHODS
            if isinstance(spec := item.get(method), dict)
        }
        out[shape_key(path)] = methods
    return out


def _bodies(op: Op) -> Iterator[Pointer]:
    """The request body and the 2xx responses of an operation."""
    yield (*op.pointer, "requestBody")
    for code in op.spec.get("responses") or {}:
        if str(code).startswith("2"):
            yield (*op.pointer, "responses", code)


def document_schema_slots(document: dict[str, Any]) -> Iterable[tuple[str, Pointer]]:
    """(collection path template, pointer) of every schema a collection's documents are
    validated against or shown through: request bodies and 2xx responses of collection and
    document endpoints."""
    for methods in operations(document).values():
        for op in methods.values():
            collection = collection_of(op.path, op.kind)
            if collection is None:
                continue
            for body in _bodies(op):
                schema = json_schema_at(document, body)
                if schema is not None:
                    yield collection, schema


def _components(document: dict[str, Any], schema: Any, found: set[str]) -> None:
    """Names of ``components/schemas`` entries ``schema`` reaches, transitively."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            target = ref_pointer(ref) if isinstance(ref, str) else None
            if target and len(target) >= 3 and target[:2] == COMPONENTS:
                name = str(target[2])
                if name not in found:
                    found.add(name)
                    stack.append(node_at(document, target[:3]))
            stack.extend(v for k, v in node.items() if k != "$ref")


def component_users(document: dict[str, Any]) -> dict[str, frozenset[str]]:
    """Component name → the collections whose documents it describes."""
    users: dict[str, set[str]] = {}
    for collection, pointer in document_schema_slots(document):
        found: set[str] = set()
        _components(document, node_at(document, pointer), found)
        for name in found:
            users.setdefault(name, set()).add(collection)
    return {name: frozenset(paths) for name, paths in users.items()}
