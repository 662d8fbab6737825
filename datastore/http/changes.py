"""``GET <collection>/_changes``: the collection's change feed, as Server-Sent Events or JSON.

The collection GET rule is checked when the feed opens (as a listing checks it). Each change
is then shown to this caller only if a GET of the document would answer 200 for them now
(``guard.may_read``: the document GET rule on the document as GET shows it, inherited values
and defaults included) and it matches the feed's ``q`` / ``filters``; a deletion only if they
could read the deleted document. Nothing of a change the caller may not read goes out: no
event, no id, no wake-up; keep-alive comments follow the clock, not the writes. JSON's
``next`` moves past unseen changes only in steps of ``HIDDEN_STEP`` (docs/changes.md).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from datastore.auth.acl import AclContext, decided_without_caller
from datastore.changes.hub import Batch, Delivery
from datastore.changes.service import ChangeService
from datastore.errors import BadRequest, CollectionNotFound, InvalidParam
from datastore.http.endpoint import Call, Endpoint
from datastore.http.guard import (
    admits,
    document_view,
    listing_filter,
    listing_parent,
    may_read,
)
from datastore.http.listing import select
from datastore.http.security import context
from datastore.http.shaping import json_response, rendered
from datastore.ids import check_collection_name
from datastore.query import ast, filterable
from datastore.query.evaluate import matches

EVENT_STREAM = "text/event-stream"
HIDDEN_STEP = 1024
"""JSON ``next`` passes changes the caller cannot see only in whole steps of this many, so
its movement does not tell when an unseen document changed."""
MAX_CURSOR_DIGITS = 18
MAX_EXAMINED = 10_000
"""Changes one JSON request looks at before it answers (with what it found)."""
RETRY_MS = 2000
"""The reconnection delay an event stream asks browsers for."""


@dataclass(frozen=True)
class Feed:
    """One opened feed: where, for whom, and what narrows it."""

    call: Call
    collection: str
    filter: ast.Node
    expires: float | None
    """When the caller's token expires (epoch seconds), if it does."""
    group: tuple[Any, ...] = ()
    """What decides, with a change, whether any caller sees it when the rule does not read
    the caller: subscribers of one group share their rendered batches (``batch_bytes``)."""

    @property
    def service(self) -> ChangeService:
        """The change service of the space."""
        return self.call.space.changes

    def remaining(self) -> float:
        """Seconds until the token expires (infinite without one)."""
        return float("inf") if self.expires is None else self.expires - time.time()


async def changes_feed(call: Call) -> Response:
    """GET ``<collection>/_changes``."""
    feed = await open_feed(call)
    since = cursor_of(call.request)
    cursor = await feed.service.open(call.space.name, since)
    if EVENT_STREAM in call.request.headers.get("accept", ""):
        return StreamingResponse(
            stream(feed, cursor),
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return json_response(await poll(feed, cursor))


async def open_feed(call: Call) -> Feed:
    """Check the request and the collection GET rule; the feed it opens."""
    collection = _collection(call)
    reader = call.endpoint.readers.find(collection, "_")
    if reader is None or reader.document is None:
        raise CollectionNotFound()
    info = call.endpoint.document_info or call.endpoint.response_info
    listing = select(_narrowed(call), info)
    listing_filter(call, await listing_parent(call, collection))
    await call.space.documents.get_parent(collection)  # a missing parent: 404, as listings
    filterable.check(listing.filter)
    exp = (call.principal.claims or {}).get("exp")
    expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    group = (id(call.endpoint), collection, repr(listing.filter), call.principal.authenticated)
    return Feed(call, collection, listing.filter, expires, group)


def _collection(call: Call) -> str:
    collection, _ = call.op.locate(call.path_params)
    if call.op.dynamic:
        check_collection_name(collection.split("/", 1)[0], call.op.segments[0].param or "")
    return collection


def _narrowed(call: Call) -> Call:
    """The call with only the query parameters that narrow a feed (``q``, ``filters``), for
    the listing parser (which would read any other as a URL condition)."""
    kept = [(k, v) for k, v in call.request.query_params.multi_items() if k in ("q", "filters")]
    scope = dict(call.request.scope, query_string=urlencode(kept).encode())
    request = Request(scope, call.request.receive)
    return Call(call.endpoint, call.space, request, call.path_params, call.principal)


def cursor_of(request: Request) -> int | None:
    """The cursor to follow from: ``Last-Event-ID`` (a reconnecting event stream), else
    ``since``; None for neither."""
    since = request.query_params.get("since")
    given = None if since is None else _cursor(since, "since")
    header = request.headers.get("last-event-id")
    if header is not None:
        return _cursor(header.strip(), "Last-Event-ID")
    return given


def _cursor(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_CURSOR_DIGITS):
        reason = "must be a cursor: the id of an event or a next value of this feed"
        raise BadRequest("The cursor is not valid.", invalid_params=[InvalidParam(name, reason)])
    return int(raw)


def _number(call: Call, name: str, default: int, low: int, high: int) -> int:
    raw = call.request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        reason = f"must be a whole number from {low} to {high}"
        raise BadRequest(invalid_params=[InvalidParam(name, reason)])
    return int(raw)


async def poll(feed: Feed, cursor: int) -> dict[str, Any]:
    """One JSON page: changes after ``cursor``, waiting up to ``wait`` seconds for one."""
    call, settings = feed.call, feed.call.settings
    wait = _number(call, "wait", 0, 0, settings.changes_max_wait)
    limit = _number(call, "limit", settings.default_limit, 1, settings.max_limit)
    deadline = time.monotonic() + min(wait, max(feed.remaining(), 0))
    start, examined = cursor, 0
    events: list[dict[str, Any]] = []
    while True:
        timeout = max(deadline - time.monotonic(), 0)
        batch = await feed.service.next_batch(
            call.space.name,
            feed.collection,
            cursor,
            limit - len(events),
            timeout,
            fresh=cursor == start,
        )
        for delivery in batch.deliveries:
            event = await visible(feed, delivery)
            if event is not None:
                events.append(event)
        examined += max(batch.through - cursor, 0)
        cursor = batch.through
        if events or timeout <= 0 or examined >= MAX_EXAMINED or len(events) >= limit:
            break
    shown = int(events[-1]["id"]) if events else start
    passed = cursor - cursor % HIDDEN_STEP  # every visible change up to cursor is in events
    return {"changes": events, "next": str(max(shown, passed, start))}


async def stream(feed: Feed, cursor: int) -> AsyncIterator[bytes]:
    """The event stream: changes as they come, keep-alive comments, until the token expires
    or the server shuts down."""
    call = feed.call
    keepalive = call.settings.changes_keepalive_seconds
    closing = feed.service.closing()
    with feed.service.streaming():
        yield f"retry: {RETRY_MS}\n\n".encode()
        next_ping = time.monotonic() + keepalive
        fresh = True
        while not closing.is_set() and feed.remaining() > 0:
            timeout = max(min(next_ping - time.monotonic(), feed.remaining()), 0)
            batch = await feed.service.next_batch(
                call.space.name,
                feed.collection,
                cursor,
                call.settings.max_limit,
                timeout,
                fresh=fresh,
            )
            fresh = len(batch.deliveries) == call.settings.max_limit  # catching up
            if feed.remaining() <= 0:
                return
            chunk = await batch_bytes(feed, batch)
            if chunk:
                yield chunk  # one write per wake-up, however many changes it brought
            cursor = batch.through
            if time.monotonic() >= next_ping:
                yield b": keep-alive\n\n"
                next_ping = time.monotonic() + keepalive


class Sequencing:
    """ASGI middleware (PostgreSQL): once a request that may write has answered with success,
    its changes are committed; the change service numbers them soon (``changes.written``,
    which never waits)."""

    def __init__(self, app: Any, changes: ChangeService) -> None:
        self.app = app
        self.changes = changes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        changes = self.changes

        async def send_then_number(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.start" and message["status"] < 400:
                changes.written()

        await self.app(scope, receive, send_then_number)


def sse(event: dict[str, Any]) -> bytes:
    """One event in the text/event-stream format (data on one line: JSON has no newline)."""
    data = orjson.dumps(event["data"]).decode()
    return f"id: {event['id']}\nevent: {event['event']}\ndata: {data}\n\n".encode()


@dataclass(frozen=True)
class Shared:
    """What every subscriber of a feed's collection would compute alike for one change,
    computed once per change (``Delivery.memo``): the document GET endpoint that reads the
    document, the document as that GET shows it, a rule decision that holds for any caller,
    and the event."""

    reader: Endpoint | None
    reads_parent: bool = False
    reads_document: bool = False
    body: Any = None
    view: dict[str, Any] | None = None
    decided: bool | None = None
    event: dict[str, Any] | None = None
    sse: bytes = b""


async def batch_bytes(feed: Feed, batch: Batch) -> bytes:
    """``batch`` as this caller's event stream shows it. What does not depend on the caller is
    decided once per batch for every subscriber of the feed's group (``Batch.memo``): with
    rules decided by the document, one subscriber's share of a fan-out is a look-up."""
    pieces: bytes | list[bytes | Delivery] | None = batch.memo.get(feed.group)
    if pieces is None:
        parts: list[bytes | Delivery] = []
        for delivery in batch.deliveries:
            shared = await _shared(feed, delivery)
            verdict = _for_everyone(feed, delivery, shared)
            if verdict is None:
                parts.append(delivery)  # each caller decides
            elif verdict:
                parts.append(shared.sse)
        caller_free = all(isinstance(part, bytes) for part in parts)
        pieces = batch.memo[feed.group] = (
            b"".join(p for p in parts if isinstance(p, bytes)) if caller_free else parts
        )
    if isinstance(pieces, bytes):
        return pieces
    out = [p if isinstance(p, bytes) else await visible_bytes(feed, p) for p in pieces]
    return b"".join(out)


async def visible_bytes(feed: Feed, delivery: Delivery) -> bytes:
    """``delivery`` as this caller's event stream shows it (empty when it may not)."""
    shared = await _shared(feed, delivery)
    return shared.sse if await _shown(feed, delivery, shared) else b""


async def visible(feed: Feed, delivery: Delivery) -> dict[str, Any] | None:
    """The event this caller sees for ``delivery``, or None when they may not see it."""
    shared = await _shared(feed, delivery)
    return shared.event if await _shown(feed, delivery, shared) else None


def _for_everyone(feed: Feed, delivery: Delivery, shared: Shared) -> bool | None:
    """Whether every caller of the feed's group (``Feed.group``) sees the change, or None when
    it depends on the caller (a rule reading their claims, or the parent as they may read
    it)."""
    doc, reader, call = delivery.document, shared.reader, feed.call
    if doc is None or reader is None:  # gone since (its deletion follows), or no GET
        return False
    filtered = feed.filter != ast.TRUE
    if delivery.change.kind == "deleted" and doc.extends and (filtered or shared.reads_document):
        # The deleted document's inherited values are gone with its lineage: a rule or filter
        # reading the document cannot be evaluated as it was, so the deletion stays unseen.
        return False
    if shared.reads_parent:
        return None
    access, authenticated = reader.access, call.principal.authenticated
    if shared.decided is not None and authenticated:
        admitted = shared.decided  # evaluate() answers this for every caller
    elif access.public or not authenticated or access.rule is None:
        admitted = admits(reader, call, context(call.principal, shared.view))  # ditto
    else:
        return None
    return admitted and _matches(feed, delivery, shared)


def _matches(feed: Feed, delivery: Delivery, shared: Shared) -> bool:
    """Whether the document matches the feed's filter (whoever asks)."""
    if feed.filter == ast.TRUE:
        return True
    defaults = feed.call.endpoint.facts.default_paths or {}
    return matches(feed.filter, shared.body, _sources(delivery), defaults)


async def _shown(feed: Feed, delivery: Delivery, shared: Shared) -> bool:
    """Whether this caller may see the change: its GET of the document would answer 200
    (``guard.may_read``) and the document matches the feed's filter."""
    verdict = _for_everyone(feed, delivery, shared)
    if verdict is not None:
        return verdict
    doc, reader, call = delivery.document, shared.reader, feed.call
    assert doc is not None and reader is not None
    if shared.reads_parent:  # the parent as it is now, as the GET would read it
        admitted = await may_read(call, doc)
    else:
        admitted = admits(reader, call, context(call.principal, shared.view))
    return admitted and _matches(feed, delivery, shared)


async def _shared(feed: Feed, delivery: Delivery) -> Shared:
    key = id(feed.call.endpoint)
    found: Shared | None = delivery.memo.get(key)
    if found is None:
        found = delivery.memo[key] = await _share(feed, delivery)
    return found


async def _share(feed: Feed, delivery: Delivery) -> Shared:
    doc, change, call = delivery.document, delivery.change, feed.call
    if doc is None:
        return Shared(None)
    route = call.endpoint.readers.find(doc.collection, doc.doc_id)
    reader = route.document if route is not None else None
    if reader is None:
        return Shared(None)
    deleted = change.kind == "deleted"
    body = doc.body if deleted else await call.space.documents.effective(doc)
    access = reader.access
    reads_document = access.reads("document")
    view = document_view(body, reader.response_info, doc) if reads_document else None
    decided = None
    if access.rule is not None and not access.public:
        decided = decided_without_caller(access.rule, AclContext(document=view))
    if deleted:
        data: dict[str, Any] = {"id": doc.doc_id}
    else:
        data = await rendered(Call(reader, call.space, call.request, {}, call.principal), doc)
    event = {"id": str(change.seq), "event": change.kind, "data": data}
    return Shared(
        reader,
        reads_parent=access.reads("parent"),
        reads_document=reads_document,
        body=body,
        view=view,
        decided=decided,
        event=event,
        sse=sse(event),
    )


def _sources(delivery: Delivery) -> dict[str, Any]:
    doc = delivery.document
    assert doc is not None
    sources: dict[str, Any] = {
        "$id": doc.doc_id,
        "$createdDatetime": doc.created_at,
        "$updatedDatetime": doc.updated_at,
    }
    if doc.extends:
        sources["$extends"] = doc.extends
    return sources
