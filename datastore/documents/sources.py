"""Source properties: filled by the datastore on the way out, refused or taken on the way in.

A schema property maps a source with ``x-datastore-source: document.$id`` (and
``$createdDatetime``, ``$updatedDatetime``, ``$extends``, ``$extendsAll``, ``$extendedBy``,
``$extendedByAll``). Source values never live in the stored body. Only ``$extends`` is writable;
the ``$id`` property (and a Codehooks ``_id``) may carry the id on create.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datastore.blueprint.schemas import SchemaInfo, apply_defaults, project
from datastore.clock import format_datetime
from datastore.errors import BadRequest, InvalidParam, ValidationFailed
from datastore.ids import id_problem
from datastore.storage.documents import StoredDocument
from datastore.types import Document

READ_ONLY_SOURCES = frozenset(
    {"$createdDatetime", "$updatedDatetime", "$extendsAll", "$extendedBy", "$extendedByAll"}
)
CODEHOOKS_ID = "_id"
FAMILY_SOURCES = frozenset({"$extendsAll", "$extendedBy", "$extendedByAll"})


@dataclass(frozen=True)
class Lineage:
    """The ``$extends`` family of a document, as document paths (filled by the extends
    feature; empty when a document extends nothing)."""

    extends_all: tuple[str, ...] = ()
    extended_by: tuple[str, ...] = ()
    extended_by_all: tuple[str, ...] = ()


NO_LINEAGE = Lineage()


def source_value(doc: StoredDocument, source: str, lineage: Lineage = NO_LINEAGE) -> Any:
    """The value of one source property of a stored document."""
    if source == "$id":
        return doc.doc_id
    if source == "$createdDatetime":
        return format_datetime(doc.created_at)
    if source == "$updatedDatetime":
        return format_datetime(doc.updated_at)
    if source == "$extends":
        return doc.extends or ""
    if source == "$extendsAll":
        return list(lineage.extends_all)
    if source == "$extendedBy":
        return list(lineage.extended_by)
    if source == "$extendedByAll":
        return list(lineage.extended_by_all)
    raise ValueError(f"unknown source {source}")


def id_property(info: SchemaInfo | None, dynamic: bool) -> str | None:
    """The property that carries the document id in responses (and may carry it in)."""
    if info is not None and info.id_property is not None:
        return info.id_property
    return CODEHOOKS_ID if dynamic else None


def render(
    doc: StoredDocument,
    info: SchemaInfo | None,
    *,
    dynamic: bool,
    body: Document | None = None,
    lineage: Lineage = NO_LINEAGE,
) -> Document:
    """The response form of a document: (effective) body, defaults, source properties, id,
    projected through the response schema. ``body`` overrides the stored body (inheritance)."""
    out: Document = dict(doc.body if body is None else body)
    id_prop = id_property(info, dynamic)
    if info is not None:
        out = apply_defaults(out, info)
        for prop, source in info.sources.items():
            out[prop] = source_value(doc, source, lineage)
    if id_prop is not None:
        out = {id_prop: doc.doc_id, **{k: v for k, v in out.items() if k != id_prop}}
    if info is not None:
        out = project(out, info)
    return out


@dataclass(frozen=True)
class Incoming:
    """A write body split into what is stored and what the datastore keeps itself, with the
    problems found on the way (the caller reports them together with schema errors)."""

    body: Document
    doc_id: str | None
    extends: str | None
    extends_given: bool
    problems: tuple[InvalidParam, ...] = ()
    extends_name: str = "extends"
    claimed: tuple[Claim, ...] = ()
    """Read-only source properties the body carries: accepted when they equal the stored
    document's values (a document read with GET can be written back)."""


@dataclass(frozen=True)
class Claim:
    """A read-only source property given in a write body: ``prop`` maps ``source``."""

    prop: str
    source: str
    value: Any

    def problem(self) -> InvalidParam:
        """The complaint when the value is not the document's."""
        return InvalidParam(self.prop, READ_ONLY_REASON)


READ_ONLY_REASON = "is read-only: the datastore sets it"


def claim_problems(
    claimed: tuple[Claim, ...], doc: StoredDocument | None, lineage: Lineage = NO_LINEAGE
) -> list[InvalidParam]:
    """The claims that do not hold for ``doc`` (every claim, for a document being created)."""
    return [
        claim.problem()
        for claim in claimed
        if doc is None or claim.value != source_value(doc, claim.source, lineage)
    ]


def split_incoming(
    body: Any, info: SchemaInfo | None, *, dynamic: bool, url_id: str | None
) -> Incoming:
    """Separate source properties from a write body.

    Raises ValidationFailed when the body is not an object; read-only source properties and
    an id that differs from the URL's are returned as ``problems``.
    """
    if not isinstance(body, dict):
        raise ValidationFailed(invalid_params=[InvalidParam("body", "must be a JSON object")])
    problems: list[InvalidParam] = []
    claimed: list[Claim] = []
    stored = dict(body)
    doc_id: str | None = None
    extends: str | None = None
    extends_given = False
    extends_name = "extends"
    sources: Mapping[str, str] = info.sources if info is not None else {}
    for prop, source in sources.items():
        if prop not in stored:
            continue
        value = stored.pop(prop)
        if source == "$extends":
            extends_given, extends_name = True, prop
            if value is None or value == "":
                extends = None
            elif isinstance(value, str):
                extends = value
            else:
                problems.append(InvalidParam(prop, "must be the path of a document, or null"))
        elif source == "$id":
            doc_id = _check_body_id(prop, value, url_id, problems, strict=True)
        elif source in READ_ONLY_SOURCES:
            claimed.append(Claim(prop, source, value))
    id_prop = id_property(info, dynamic)
    if id_prop == CODEHOOKS_ID and CODEHOOKS_ID in stored:
        value = stored.pop(CODEHOOKS_ID)
        # Codehooks keeps the URL's id on replace and drops a different _id silently.
        doc_id = _check_body_id(CODEHOOKS_ID, value, url_id, problems, strict=False)
    return Incoming(
        stored, doc_id, extends, extends_given, tuple(problems), extends_name, tuple(claimed)
    )


def _check_body_id(
    prop: str, value: Any, url_id: str | None, problems: list[InvalidParam], *, strict: bool
) -> str | None:
    if url_id is not None:
        if strict and value != url_id:
            problems.append(InvalidParam(prop, "must match the id in the URL"))
        return url_id
    problem = id_problem(value)
    if problem is not None:
        problems.append(InvalidParam(prop, problem))
        return None
    assert isinstance(value, str)
    return value


def require_object(value: Any, name: str = "body") -> Document:
    """``value`` if it is a JSON object; raises BadRequest otherwise."""
    if not isinstance(value, dict):
        raise BadRequest(invalid_params=[InvalidParam(name, "must be a JSON object")])
    return value
