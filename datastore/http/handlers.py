"""Generic handlers: one short function per operation kind (parse → service → shape).

Blocking database work runs in Starlette's thread pool, so the event loop never waits on the
database driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from datastore.documents.change import Change
from datastore.documents.service import Guards
from datastore.documents.sources import (
    Incoming,
    render,
    split_incoming,
)
from datastore.errors import (
    BadRequest,
    DocumentNotFound,
    InvalidParam,
    ValidationFailed,
)
from datastore.http.endpoint import Call
from datastore.http.guard import (
    Parent,
    check_incoming,
    check_target,
    document_view,
    guarded,
    listing_filter,
    listing_parent,
    parent_of,
    refuse_when_no_document_could_pass,
    require,
    rule_context,
    write_guards,
)
from datastore.http.listing import (
    Listing,
    absent_collection_hint,
    read_collection,
    require_collection,
    require_selector,
    select,
)
from datastore.http.requests import not_modified, preconditions, read_json
from datastore.http.shaping import (
    doc_headers,
    json_response,
    maybe_body,
    pick_status,
    rendered,
    resolved,
)
from datastore.ids import check_collection_name, check_id
from datastore.query import filterable
from datastore.query.selection import Selection
from datastore.query.updates import apply_update
from datastore.storage.documents import StoredDocument


def locate(call: Call) -> tuple[str, str | None]:
    """The collection path and document id of the request, checked."""
    collection, doc_id = call.op.locate(call.path_params)
    if call.op.dynamic:
        check_collection_name(collection.split("/", 1)[0], call.op.segments[0].param or "")
    if doc_id is not None:
        last = call.op.segments[-1]
        check_id(doc_id, last.param or "id")
    return collection, doc_id


def incoming(call: Call, body: Any, url_id: str | None, *, partial: bool) -> Incoming:
    """Split a write body and validate it against the operation's schema."""
    parts = split_incoming(body, call.endpoint.request_info, dynamic=call.op.dynamic, url_id=url_id)
    problems = list(parts.problems)
    if call.op.method == "post":  # a new document: no read-only value can be its own yet
        problems.extend(claim.problem() for claim in parts.claimed)
    schema = call.endpoint.request_schema
    # A document that extends another gets the properties it does not set from there, so
    # its own body is checked without top-level ``required``.
    partial = partial or parts.extends is not None
    if schema is not None and not (partial and _has_operators(parts.body)):
        problems.extend(schema.errors(parts.body, partial=partial))
    if problems:
        raise ValidationFailed(invalid_params=problems)
    return parts


def _has_operators(body: dict[str, Any]) -> bool:
    return any(key.startswith("$") for key in body)


@asynccontextmanager
async def explained_absence(call: Call, collection: str, doc_id: str) -> AsyncIterator[None]:
    """A document missing from a dynamic collection that holds nothing: say that the
    collection does not exist, and where a Codehooks URL habit may have led."""
    try:
        yield
    except DocumentNotFound as missing:
        if missing.detail is None and call.op.dynamic:
            empty = not await call.space.documents.holds_any(collection)
            if empty:
                raise DocumentNotFound(absent_collection_hint(collection, doc_id)) from None
        raise


@contextmanager
def parent_absent_when_hidden(parent: Parent | None) -> Iterator[None]:
    """Under a parent the caller may not read, a missing document answers as the missing
    parent would: its existence does not leak through the difference."""
    try:
        yield
    except DocumentNotFound:
        if parent is not None and parent.hidden:
            raise parent.absent() from None
        raise


async def get_document(call: Call) -> Response:
    """GET a document."""
    collection, doc_id = locate(call)
    assert doc_id is not None
    access = call.endpoint.access
    # The parent is read once, for both checks.
    parent = await parent_of(call, collection) if guarded(access) else None
    refuse_when_no_document_could_pass(call, parent)
    async with explained_absence(call, collection, doc_id):
        with parent_absent_when_hidden(parent):
            doc = await call.space.documents.get(collection, doc_id)
    info = call.endpoint.response_info
    body, lineage = (await resolved(call, [doc], info))[doc.pk]
    if guarded(access):
        view = document_view(body, call.endpoint.view_info, doc)
        require(call, access, rule_context(call, view, parent), parent, hide=True)
    headers = doc_headers(doc)
    if not_modified(call.request.headers, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    status, _ = pick_status(call.op, [200])
    answer = render(doc, info, dynamic=call.op.dynamic, body=body, lineage=lineage)
    return json_response(answer, status, headers)


async def list_documents(call: Call) -> Response:
    """GET a collection: a JSON array (creation order unless sorted), or a page object."""
    collection, _ = locate(call)
    answer = await read_collection(call, collection)
    status, _ = pick_status(call.op, [200])
    return json_response(answer, status)


async def _selected(call: Call) -> tuple[str, Listing, Selection, Parent | None]:
    collection, _ = locate(call)
    info = call.endpoint.document_info or call.endpoint.response_info
    listing = select(call, info)
    parent = await listing_parent(call, collection)
    access = listing_filter(call, parent)
    filterable.check(listing.filter)
    return collection, listing, Selection(listing.filter, access), parent


async def count_documents(call: Call) -> Response:
    """GET ``/_count``: ``{"count": n}`` of the matching documents the caller may read."""
    collection, _, selection, _ = await _selected(call)
    documents, facts = call.space.documents, call.endpoint.facts
    count = await documents.count(collection, selection, facts)
    await require_collection(call, collection, found=count > 0)
    status, _ = pick_status(call.op, [200])
    return json_response({"count": count}, status)


async def delete_by_query(call: Call) -> Response:
    """DELETE ``/_byquery``: delete every matching document the caller may read and delete
    (the document DELETE rule, in the WHERE clause), in one transaction."""
    collection, listing, selection, _ = await _selected(call)
    require_selector(listing)
    documents, facts = call.space.documents, call.endpoint.facts
    count = await documents.delete_many(collection, selection, facts)
    await require_collection(call, collection, found=count > 0)
    status, _ = pick_status(call.op, [200])
    return json_response({"count": count}, status)


async def update_by_query(call: Call) -> Response:
    """PATCH ``/_byquery``: apply the update to every matching document the caller may read
    and change (the document PATCH rule, in the WHERE clause), each re-validated and its
    result checked against the PATCH rule, all in one transaction (one violation rolls the
    whole batch back)."""
    collection, listing, selection, parent = await _selected(call)
    require_selector(listing)
    update = await read_json(call)
    if not isinstance(update, dict):
        raise ValidationFailed(invalid_params=[InvalidParam("body", "must be a JSON object")])
    apply_update({}, update)  # refuse a malformed update before touching anything
    schema = call.endpoint.document_schema
    write = call.endpoint.document_write
    assert write is not None  # listing_filter refused the request otherwise
    guards = write_guards(call, parent, existing=False, endpoint=write)

    def compute(current: StoredDocument) -> Change:
        body = apply_update(current.body, update)
        if schema is not None:
            problems = schema.errors(body)
            if problems:
                raise ValidationFailed(
                    f"The update would make document {current.doc_id!r} invalid; nothing was "
                    "changed.",
                    invalid_params=problems,
                )
        return Change(body, current.extends)

    documents, facts = call.space.documents, call.endpoint.facts
    count = await documents.update_many(collection, selection, facts, compute, guards=guards)
    await require_collection(call, collection, found=count > 0)
    status, _ = pick_status(call.op, [200])
    return json_response({"count": count}, status)


async def create_document(call: Call) -> Response:
    """POST to a collection: a new document with a generated (or body-given) id."""
    collection, _ = locate(call)
    parts = incoming(call, await read_json(call), None, partial=False)
    await check_target(call, parts)
    guards = await _incoming_guards(call, collection, parts, parts.doc_id)
    doc = await call.space.documents.create(
        collection,
        parts.doc_id,
        Change(parts.body, parts.extends, parts.extends_name),
        guards=guards,
    )
    status, with_body = pick_status(call.op, [201])
    location = quote(call.request.url.path.rstrip("/"), safe="/") + "/" + quote(doc.doc_id, safe="")
    headers = {**doc_headers(doc), "Location": location}
    return maybe_body(await rendered(call, doc), status, with_body, headers)


async def _incoming_guards(
    call: Call, collection: str, parts: Incoming, doc_id: str | None
) -> Guards:
    """POST and PUT: the rule must hold for the incoming document. Without ``$extends`` that
    is checked here, before the stored state is known; a document that extends another is
    checked in the write's transaction, with the values it inherits. PUT adds the check of
    the stored document it would replace."""
    parent = await parent_of(call, collection) if guarded(call.endpoint.access) else None
    if parts.extends is None:
        view = document_view(parts.body, call.endpoint.view_info, doc_id=doc_id)
        check_incoming(call, view, parent)
    return write_guards(
        call,
        parent,
        existing=call.op.method == "put",
        result=parts.extends is not None,
    )


async def put_document(call: Call) -> Response:
    """PUT a document: create with the URL's id, or replace. The rule holds for the incoming
    document, and for the stored one it replaces."""
    collection, doc_id = locate(call)
    assert doc_id is not None
    conditions = preconditions(call.request.headers)
    parts = incoming(call, await read_json(call), doc_id, partial=False)
    await check_target(call, parts)
    guards = await _incoming_guards(call, collection, parts, doc_id)
    async with explained_absence(call, collection, doc_id):
        doc, created = await call.space.documents.put(
            collection,
            doc_id,
            Change(parts.body, parts.extends, parts.extends_name, parts.claimed),
            preconditions=conditions,
            guards=guards,
            # Codehooks routes replace (404 for a missing document); POST creates.
            create=not call.op.dynamic,
        )
    status, with_body = pick_status(call.op, [201, 200] if created else [200, 204])
    return maybe_body(await rendered(call, doc), status, with_body, doc_headers(doc))


async def patch_document(call: Call) -> Response:
    """PATCH a document: update operators, or the given top-level fields. The rule holds for
    the stored document and for the result."""
    collection, doc_id = locate(call)
    assert doc_id is not None
    conditions = preconditions(call.request.headers)
    parts = incoming(call, await read_json(call), doc_id, partial=True)
    if parts.extends_given:
        await check_target(call, parts)
    schema = call.endpoint.request_schema
    parent = await parent_of(call, collection)
    refuse_when_no_document_could_pass(call, parent)

    def compute(current: StoredDocument) -> Change:
        body = apply_update(current.body, parts.body)
        extends = parts.extends if parts.extends_given else current.extends
        if schema is not None:
            schema.validate(body, partial=extends is not None)
        return Change(body, extends, parts.extends_name, parts.claimed)

    async with explained_absence(call, collection, doc_id):
        with parent_absent_when_hidden(parent):
            doc = await call.space.documents.patch(
                collection,
                doc_id,
                compute,
                preconditions=conditions,
                relink=parts.extends_given and parts.extends is not None,
                guards=write_guards(call, parent),
            )
    status, with_body = pick_status(call.op, [200, 204])
    return maybe_body(await rendered(call, doc), status, with_body, doc_headers(doc))


async def delete_document(call: Call) -> Response:
    """DELETE a document (and its sub-collections)."""
    collection, doc_id = locate(call)
    assert doc_id is not None
    conditions = preconditions(call.request.headers)
    parent = await parent_of(call, collection)
    refuse_when_no_document_could_pass(call, parent)
    guards = write_guards(call, parent, result=False)
    async with explained_absence(call, collection, doc_id):
        with parent_absent_when_hidden(parent):
            doc = await call.space.documents.delete(
                collection,
                doc_id,
                preconditions=conditions,
                guards=guards,
                detach=detach_requested(call),
            )
    status, _ = pick_status(call.op, [204, 200])
    if status == 204:
        return Response(status_code=204)
    return json_response({"_id": doc.doc_id}, status)


def detach_requested(call: Call) -> bool:
    """``?detach=true`` on a DELETE: clear the ``$extends`` of documents extending this one."""
    raw = call.request.query_params.get("detach")
    if raw is None or raw in ("false", "0"):
        return False
    if raw in ("true", "1", ""):
        return True
    raise BadRequest(invalid_params=[InvalidParam("detach", "must be true or false")])
