"""Document-level access checks of the handlers: what a rule sees as ``document`` and
``parent``, and what failing means (403, or 404 when the caller may not know the document)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from datastore.blueprint.schemas import SchemaInfo, apply_defaults
from datastore.documents.sources import format_datetime
from datastore.errors import DocumentNotFound, Forbidden
from datastore.http.endpoint import Call
from datastore.http.security import Access, allowed, context, denies_everything, list_filter
from datastore.query import ast
from datastore.query.sql import compiler_for
from datastore.storage.documents import StoredDocument
from datastore.types import Document


def document_view(
    body: Document,
    info: SchemaInfo | None,
    doc: StoredDocument | None = None,
    doc_id: str | None = None,
) -> dict[str, Any]:
    """A document as rules see it: body with defaults, plus ``$id`` and the other sources."""
    view = apply_defaults(body, info) if info is not None else dict(body)
    if doc is not None:
        view["$id"] = doc.doc_id
        view["$createdDatetime"] = format_datetime(doc.created_at)
        view["$updatedDatetime"] = format_datetime(doc.updated_at)
        view["$extends"] = doc.extends or ""
    elif doc_id is not None:
        view["$id"] = doc_id
    return view


async def parent_view(call: Call, collection: str, access: Access) -> dict[str, Any] | None:
    """The parent document of a nested collection, when the rule reads ``parent``."""
    if not access.reads("parent"):
        return None
    parent = await call.space.documents.fetch_parent(collection)
    return document_view(parent.body, None, parent) if parent is not None else None


def require(call: Call, access: Access, ctx: Any, *, hide: bool = False) -> None:
    """Raise unless the rule allows ``ctx``: Forbidden, or DocumentNotFound when ``hide`` and
    the refusal depends on the document (so its existence does not leak)."""
    if allowed(access, ctx):
        return
    if hide and not denies_everything(access, ctx):
        raise DocumentNotFound()
    raise Forbidden()


async def check_document(
    call: Call,
    collection: str,
    document: dict[str, Any] | None,
    *,
    hide: bool = False,
) -> None:
    """Check the operation's rule against one document (and its parent)."""
    access = call.endpoint.access
    if access.public or access.rule is None:
        return
    parent = await parent_view(call, collection, access)
    require(call, access, context(call.principal, document, parent), hide=hide)


def checker(call: Call, parent: dict[str, Any] | None, info: SchemaInfo | None) -> Any:
    """A callback for the service: checks the rule against a stored document in the
    transaction (PATCH, PUT replace, DELETE)."""
    access = call.endpoint.access
    read_access = call.endpoint.document_access

    def check(doc: StoredDocument, *, stored: bool = True) -> None:
        """``stored``: ``doc`` is the stored document (not the result of a change), so a
        refusal is a 404 when the caller may not read it either: its existence stays
        hidden, as on GET."""
        if access.public or access.rule is None:
            return
        view = document_view(doc.body, info, doc)
        ctx = context(call.principal, view, parent)
        if allowed(access, ctx):
            return
        readable = read_access is not None and (
            read_access.public or read_access.rule is None or allowed(read_access, ctx)
        )
        require(call, access, ctx, hide=stored and not readable)

    return check


def refuse_when_no_document_could_pass(call: Call, parent: dict[str, Any] | None) -> None:
    """Before a stored document is looked up: a 403 when the rule fails for this caller
    whatever the document, so a missing and an existing document answer alike."""
    access = call.endpoint.access
    if access.public or access.rule is None:
        return
    if denies_everything(access, context(call.principal, None, parent)):
        raise Forbidden()


async def listing_filter(call: Call, collection: str) -> sa.ColumnElement[bool] | None:
    """The collection rule must pass; then the WHERE clause of the documents the caller may
    read (the paired document GET rule translated to SQL), or None when all may be read."""
    access = call.endpoint.access
    document_access = call.endpoint.document_access
    needs_parent = access.reads("parent") or (
        document_access is not None and document_access.reads("parent")
    )
    parent = None
    if needs_parent:
        doc = await call.space.documents.fetch_parent(collection)
        parent = document_view(doc.body, None, doc) if doc is not None else None
    ctx = context(call.principal, None, parent)
    if not access.public and access.rule is not None:
        require(call, access, ctx)
    node = list_filter(document_access, ctx)
    if node == ast.TRUE:
        return None
    info = call.endpoint.document_info
    compiler = compiler_for(
        info.default_paths if info is not None else None,
        inherits=call.endpoint.inherits,
        dialect=call.space.db.dialect,
    )
    return compiler.filter(node)
