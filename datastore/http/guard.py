"""Document-level access checks of the handlers: what a rule sees as ``document`` and
``parent``, and what failing means.

One principle decides every answer: a caller who may not read a document gets the same answer
whether it exists or not. So a refusal that depends on a document the caller may not read is
answered as that document's absence would be: 404 ``Document not found`` for the document
itself, 404 ``Collection not found`` for the parent of a nested collection, 400 ``Invalid
extending document`` for an ``$extends`` target. A rule that fails for the caller whatever the
document is a 403 before anything is looked up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datastore.auth.acl import AclContext
from datastore.blueprint.model import Kind
from datastore.blueprint.schemas import SchemaInfo, apply_defaults
from datastore.clock import format_datetime
from datastore.documents.extends import INVALID_TITLE, split_path
from datastore.documents.service import Guards, missing_parent
from datastore.documents.sources import Incoming
from datastore.errors import (
    BadRequest,
    CollectionNotFound,
    DatastoreError,
    DocumentNotFound,
    Forbidden,
    InvalidParam,
)
from datastore.http.endpoint import Call, Endpoint
from datastore.http.security import (
    Access,
    allowed,
    context,
    denies_everything,
    gate,
    list_filter,
)
from datastore.query import ast
from datastore.query.selection import Rule
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


@dataclass(frozen=True)
class Parent:
    """The parent document of a nested collection as rules see it; ``hidden``: the caller may
    not read it, so a refusal answers as its absence would (``Collection not found``)."""

    view: dict[str, Any]
    hidden: bool
    collection: str
    """The nested collection it is the parent of."""

    def absent(self) -> CollectionNotFound:
        """The answer its absence gets."""
        return missing_parent(self.collection)


def admits(endpoint: Endpoint, call: Call, ctx: AclContext) -> bool:
    """Whether the caller passes ``endpoint``'s access (credential and rule) with ``ctx``."""
    decided = gate(endpoint.access, endpoint.op, call.principal).decided
    return allowed(endpoint.access, ctx) if decided is None else decided


async def may_read(call: Call, doc: StoredDocument, *, listing: bool = False) -> bool:
    """Whether a GET of ``doc`` by this caller would answer 200 (``listing``: and its
    collection's GET rule passes too)."""
    reader = call.endpoint.readers.find(doc.collection, doc.doc_id)
    if reader is None or reader.document is None:
        return False
    gates = [reader.document]
    if listing and reader.collection is not None:
        gates.append(reader.collection)
    parent_view = None
    if any(gate.access.reads("parent") for gate in gates):
        grand = await call.space.documents.get_parent(doc.collection)
        parent_view = document_view(grand.body, None, grand) if grand is not None else None
    view = None
    if reader.document.access.reads("document"):
        info = reader.document.response_info
        view = document_view(await call.space.documents.effective(doc), info, doc)
    return all(
        admits(
            gate,
            call,
            context(call.principal, view if gate is reader.document else None, parent_view),
        )
        for gate in gates
    )


def _reads_parent(*accesses: Access | None) -> bool:
    return any(access is not None and access.reads("parent") for access in accesses)


async def parent_of(call: Call, collection: str, *accesses: Access | None) -> Parent | None:
    """The parent of a nested collection, when one of ``accesses`` reads ``parent``; raises
    CollectionNotFound when it is missing."""
    if not _reads_parent(*(accesses or (call.endpoint.access,))):
        return None
    doc = await call.space.documents.get_parent(collection)
    if doc is None:
        return None
    hidden = not await may_read(call, doc)
    return Parent(document_view(doc.body, None, doc), hidden, collection)


def rule_context(call: Call, document: dict[str, Any] | None, parent: Parent | None) -> AclContext:
    """The context a rule of this call is evaluated in."""
    return context(call.principal, document, parent.view if parent is not None else None)


def refusal(
    call: Call, access: Access, ctx: AclContext, parent: Parent | None, *, hide: bool = False
) -> DatastoreError:
    """The answer to a refused caller: as if the parent were missing when the caller may not
    read it; DocumentNotFound when ``hide`` and the refusal depends on the document; else 403."""
    if parent is not None and parent.hidden:
        return parent.absent()
    if hide and not denies_everything(access, ctx):
        return DocumentNotFound()
    return Forbidden()


def require(
    call: Call,
    access: Access,
    ctx: AclContext,
    parent: Parent | None = None,
    *,
    hide: bool = False,
) -> None:
    """Raise ``refusal`` unless the rule allows ``ctx``."""
    if not allowed(access, ctx):
        raise refusal(call, access, ctx, parent, hide=hide)


def guarded(access: Access) -> bool:
    """Whether the rule reads anything (not ``public``, not credential-only)."""
    return not access.public and access.rule is not None


def check_incoming(call: Call, view: dict[str, Any], parent: Parent | None) -> None:
    """POST, and PUT before the stored state is known: the rule against the incoming
    document (and its parent, read by ``parent_of``)."""
    access = call.endpoint.access
    if guarded(access):
        require(call, access, rule_context(call, view, parent), parent)


def refuse_when_no_document_could_pass(call: Call, parent: Parent | None) -> None:
    """Before a stored document is looked up: refuse when the rule fails for this caller
    whatever the document, so a missing and an existing document answer alike."""
    access = call.endpoint.access
    if not guarded(access):
        return
    ctx = rule_context(call, None, parent)
    if denies_everything(access, ctx):
        raise refusal(call, access, ctx, parent)


def write_guards(
    call: Call,
    parent: Parent | None,
    *,
    existing: bool = True,
    result: bool = True,
    endpoint: Endpoint | None = None,
) -> Guards:
    """The service's in-transaction checks of a document write (of ``endpoint``, by default
    the call's): the rule on the stored document (a refusal is a 404 when the caller may not
    read it either, so writes cannot probe for documents) and on the result. Both see
    inherited values and the defaults of the document's GET schema."""
    endpoint = endpoint or call.endpoint
    access = endpoint.access
    if not guarded(access):
        return Guards()
    info = endpoint.view_info
    read_access = endpoint.document_access

    def readable(ctx: AclContext) -> bool:
        return read_access is not None and (not guarded(read_access) or allowed(read_access, ctx))

    def check_existing(doc: StoredDocument, body: Document) -> None:
        ctx = rule_context(call, document_view(body, info, doc), parent)
        if not allowed(access, ctx):
            raise refusal(call, access, ctx, parent, hide=not readable(ctx))

    def check_result(doc: StoredDocument, body: Document) -> None:
        require(call, access, rule_context(call, document_view(body, info, doc), parent), parent)

    return Guards(
        existing=check_existing if existing else None, result=check_result if result else None
    )


async def check_target(call: Call, parts: Incoming) -> None:
    """An ``$extends`` target must be a document the caller may read (its document GET and
    collection GET rules); any other is answered exactly as a missing target is."""
    if parts.extends is None:
        return
    collection, doc_id = split_path(parts.extends, parts.extends_name)
    try:
        target = await call.space.documents.get(collection, doc_id)
        readable = await may_read(call, target, listing=True)
    except (DocumentNotFound, CollectionNotFound):
        readable = False
    if not readable:
        raise BadRequest(
            title=INVALID_TITLE,
            invalid_params=[InvalidParam(parts.extends_name, "Document to extend does not exist")],
        )


async def listing_parent(call: Call, collection: str) -> Parent | None:
    """The parent a collection operation's rules read: its own, its document GET's and, for a
    by-query write, its document PATCH/DELETE's."""
    endpoint, write = call.endpoint, call.endpoint.document_write
    return await parent_of(
        call,
        collection,
        endpoint.access,
        endpoint.document_access,
        write.access if write is not None else None,
    )


def listing_filter(call: Call, parent: Parent | None) -> Rule | None:
    """The collection rule must pass; then the documents the caller may read (the paired
    document GET rule as a query tree), or None when all may be read. A
    ``_byquery`` write also selects only documents its document PATCH/DELETE rule allows."""
    endpoint = call.endpoint
    access = endpoint.access
    write = endpoint.document_write
    byquery_write = endpoint.op.kind is Kind.BYQUERY and endpoint.op.method != "get"
    ctx = rule_context(call, None, parent)
    if guarded(access):
        require(call, access, ctx, parent)
    nodes = [list_filter(endpoint.document_access, ctx)]
    if byquery_write:
        nodes.append(_write_filter(call, write, ctx, parent))
    node = ast.And(tuple(nodes)) if len(nodes) > 1 else nodes[0]
    if all(n == ast.TRUE for n in nodes):
        return None
    return Rule(node, endpoint.rule_facts)


def _write_filter(
    call: Call, write: Endpoint | None, ctx: AclContext, parent: Parent | None
) -> ast.Node:
    """The documents a by-query write may touch: those its document operation's rule allows."""
    method = call.op.method.upper()
    if write is None:
        raise Forbidden(
            f"This collection declares no document {method} operation, so no document may be "
            f"changed by query ({method} /_byquery applies the rule of {method} on a document)."
        )
    access = write.access
    if access.public:
        return ast.TRUE
    if not call.principal.authenticated or (access.rule is None and write.op.security is None):
        raise Forbidden()
    node = list_filter(access, ctx)
    if node == ast.FALSE:
        raise refusal(call, access, ctx, parent)
    return node
