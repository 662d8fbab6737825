"""``datastore check-data``: every stored document checked against the blueprint's schema of its
collection, and the documents of collections the blueprint no longer declares.

Which schema: the one writes are validated against, i.e. the request body of the collection's
document PUT, else of its POST, else of its document PATCH (checked in full); a collection that
declares none of those is checked against its document GET response schema. A document is
checked as GET shows it: with the values it inherits through ``$extends`` (nearest ancestor
first, ``documents/extends.inherit``), without schema defaults (a write would have to carry the
value) and without source properties (they are not stored). Reasons are the ``invalid-params``
of the server (``blueprint/schemas.py``).

Collection paths map to blueprint paths by shape: ``users/u1/notes`` is served by
``/users/{userid}/notes``; a templated first segment (``/{collection}``, Codehooks style)
serves any root collection name, literal paths first. Memory stays constant: documents are
read in batches (``storage/scan.py``) and each collection keeps its counts and the first
``examples`` invalid documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from datastore.blueprint.model import Kind, Operation, build_blueprint
from datastore.blueprint.schemas import CompiledSchema, SchemaCompiler
from datastore.documents.extends import inherit
from datastore.errors import InvalidParam
from datastore.storage.engine import Database
from datastore.storage.scan import ScannedDocument, count_documents, scan_documents

Shape = tuple[str | None, ...]
"""A collection shape: its collection names (None for a templated first segment)."""


@dataclass
class Invalid:
    """One invalid document and every reason."""

    path: str
    reasons: list[InvalidParam]


@dataclass
class CollectionReport:
    """What was found in one collection (a blueprint path, or an undeclared one)."""

    space: str
    collection: str
    served_by: str | None
    checked: int = 0
    invalid: int = 0
    examples: list[Invalid] = field(default_factory=list)

    @property
    def orphaned(self) -> bool:
        """Whether the blueprint no longer declares this collection."""
        return self.served_by is None


@dataclass
class Report:
    """Every collection's findings, in the order first met."""

    collections: dict[tuple[str, str], CollectionReport] = field(default_factory=dict)

    @property
    def checked(self) -> int:
        """Documents read."""
        return sum(c.checked for c in self.collections.values())

    @property
    def invalid(self) -> int:
        """Documents that do not satisfy their schema."""
        return sum(c.invalid for c in self.collections.values())

    @property
    def orphans(self) -> int:
        """Documents in collections the blueprint does not declare."""
        return sum(c.checked for c in self.collections.values() if c.orphaned)

    @property
    def ok(self) -> bool:
        """No invalid and no orphaned document."""
        return not self.invalid and not self.orphans


@dataclass(frozen=True)
class _Target:
    template: str
    schema: CompiledSchema | None


_PREFERENCE = (
    (Kind.DOCUMENT, "put", "request"),
    (Kind.COLLECTION, "post", "request"),
    (Kind.DOCUMENT, "patch", "request"),
    (Kind.DOCUMENT, "get", "response"),
    (Kind.COLLECTION, "get", "response"),
)


def _collection_shape(op: Operation) -> Shape:
    segments = op.segments if op.kind is Kind.COLLECTION else op.segments[:-1]
    return tuple(None if s.param else s.text for s in segments[::2])


def _template(op: Operation) -> str:
    segments = op.segments if op.kind is Kind.COLLECTION else op.segments[:-1]
    return "/" + "/".join(s.text for s in segments)


class Checker:
    """The blueprint's collections, each with the schema its documents must satisfy."""

    def __init__(self, document: dict[str, Any], *, examples: int = 10) -> None:
        model = build_blueprint(document)
        compiler = SchemaCompiler(document, openapi_version=model.openapi_version)
        self.examples = examples
        found: dict[Shape, tuple[int, str, dict[str, Any] | None]] = {}
        for op in model.operations.values():
            if op.kind not in (Kind.COLLECTION, Kind.DOCUMENT):
                continue
            shape = _collection_shape(op)
            rank, schema = len(_PREFERENCE), None
            for index, (kind, method, side) in enumerate(_PREFERENCE):
                if (op.kind, op.method) == (kind, method):
                    schema = op.request_schema if side == "request" else op.body_schema()
                    rank = index if schema is not None else len(_PREFERENCE)
            best = found.get(shape)
            if best is None or rank < best[0]:
                found[shape] = (rank, _template(op), schema)
        self.targets = {
            shape: _Target(template, compiler.compile(schema) if schema is not None else None)
            for shape, (_, template, schema) in found.items()
        }
        self._cache: dict[tuple[str, ...], tuple[str, _Target | None]] = {}

    def target(self, collection: str) -> tuple[str, _Target | None]:
        """(report key, target) of a stored collection path; the target is None when the
        blueprint does not declare it (the key then has ``*`` for document ids)."""
        parts = collection.split("/")
        names = tuple(parts[::2])
        cached = self._cache.get(names)
        if cached is None:
            if len(parts) % 2 == 1 and names in self.targets:
                cached = (self.targets[names].template, self.targets[names])
            elif len(parts) % 2 == 1 and (None, *names[1:]) in self.targets:
                target = self.targets[(None, *names[1:])]
                literal = target.template.split("/")
                literal[1] = names[0]
                cached = ("/".join(literal), target)
            else:
                shown = ["*" if i % 2 else p for i, p in enumerate(parts)]
                cached = ("/" + "/".join(shown), None)
            if len(self._cache) < 100_000:
                self._cache[names] = cached
        return cached

    def check(self, doc: ScannedDocument, report: Report) -> None:
        """Check one document into ``report``."""
        key, target = self.target(doc.collection)
        entry = report.collections.get((doc.space, key))
        if entry is None:
            served_by = target.template if target is not None else None
            entry = report.collections[(doc.space, key)] = CollectionReport(
                doc.space, key, served_by
            )
        entry.checked += 1
        if target is None or target.schema is None:
            return
        body = inherit(doc.body, doc.ancestors) if doc.ancestors else doc.body
        reasons = target.schema.errors(body)
        if reasons:
            entry.invalid += 1
            if len(entry.examples) < self.examples:
                entry.examples.append(Invalid(doc.path, reasons))


def check_data(
    db: Database,
    document: dict[str, Any],
    *,
    space: str | None,
    collection: str | None = None,
    examples: int = 10,
    progress: Callable[[int, int | None], None] | None = None,
) -> Report:
    """Check every stored document (of ``space``, of one ``collection`` path) against the
    blueprint; ``progress(done, total)`` after each batch."""
    checker = Checker(document, examples=examples)
    report = Report()
    total = count_documents(db, space=space, collection=collection) if progress else None
    done = 0
    for batch in scan_documents(db, space=space, collection=collection):
        for doc in batch:
            checker.check(doc, report)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return report


def format_report(report: Report, fmt: str) -> str:
    """The report as ``text`` (per collection: counts, then each example's reasons) or
    ``json``."""
    if fmt == "json":
        return json.dumps(
            {
                "checked": report.checked,
                "invalid": report.invalid,
                "orphans": report.orphans,
                "collections": [_json(c) for c in report.collections.values()],
            },
            indent=2,
            ensure_ascii=False,
        )
    lines: list[str] = []
    for entry in report.collections.values():
        where = f"{entry.collection} (space {entry.space})"
        if entry.orphaned:
            lines.append(
                f"{where}: {entry.checked:,} documents in a collection the blueprint does not "
                "declare (orphans)"
            )
            continue
        lines.append(f"{where}: {entry.checked:,} checked, {entry.invalid:,} invalid")
        for invalid in entry.examples:
            lines.extend(_reasons(invalid))
        if entry.invalid > len(entry.examples):
            lines.append(f"  ... and {entry.invalid - len(entry.examples):,} more")
    lines.append(
        f"{report.checked:,} documents checked: {report.invalid:,} invalid, "
        f"{report.orphans:,} orphaned"
    )
    return "\n".join(lines)


def _reasons(invalid: Invalid) -> Sequence[str]:
    return [f"  {invalid.path}"] + [
        f"    {r.name or '(document)'}: {r.reason}" for r in invalid.reasons
    ]


def _json(entry: CollectionReport) -> dict[str, Any]:
    return {
        "space": entry.space,
        "collection": entry.collection,
        "servedBy": entry.served_by,
        "orphaned": entry.orphaned,
        "checked": entry.checked,
        "invalid": entry.invalid,
        "examples": [
            {"path": i.path, "invalid-params": [r.as_json() for r in i.reasons]}
            for i in entry.examples
        ],
    }
