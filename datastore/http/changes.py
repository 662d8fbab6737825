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

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from datastore.auth.acl import AclContext, decided_without_caller
from datastore.changes.hub import Delivery
from datastore.changes.service import ChangeService
from datastore.documents.ids import check_collection_name
from datastore.errors import BadRequest, CollectionNotFound, InvalidParam
from datastore.http.endpoint import Call, Endpoint
from datastore.http.guard import (
    admits,
    document_view,
    effective_body,
    listing_filter,
    listing_parent,
    may_read,
)
from datastore.http.listing import select
from datastore.http.security import Access, context
from datastore.http.shaping import json_response, rendered
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
    reader: Call
    """The call as the collection's document GET: its rule and rendering."""
    collection: str
    filter: ast.Node
    expires: float | None
    """When the caller's token expires (epoch seconds), if it does."""

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
    filterable.check(listing.filter)
    exp = (call.principal.claims or {}).get("exp")
    expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    as_reader = Call(reader.document, call.space, call.request, {}, call.principal)
    return Feed(call, as_reader, collection, listing.filter, expires)


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
        fresh = len(batch.deliveries) == call.settings.max_limit  # catching up: keep reading
        if feed.remaining() <= 0:
            return
        chunk = [await visible_bytes(feed, delivery) for delivery in batch.deliveries]
        if any(chunk):
            yield b"".join(chunk)  # one write per wake-up, however many changes it brought
        cursor = batch.through
        if time.monotonic() >= next_ping:
            yield b": keep-alive\n\n"
            next_ping = time.monotonic() + keepalive


def sse(event: dict[str, Any]) -> bytes:
    """One event in the text/event-stream format (data on one line: JSON has no newline)."""
    data = orjson.dumps(event["data"]).decode()
    return f"id: {event['id']}\nevent: {event['event']}\ndata: {data}\n\n".encode()


async def visible_bytes(feed: Feed, delivery: Delivery) -> bytes:
    """``delivery`` as this caller's event stream shows it (empty when it may not)."""
    event = await visible(feed, delivery)
    if event is None:
        return b""
    shown: bytes = await _memo(delivery, ("sse", event["id"], id(event)), _async(sse, event))
    return shown


def _async(function: Callable[[Any], Any], value: Any) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return function(value)

    return run


async def visible(feed: Feed, delivery: Delivery) -> dict[str, Any] | None:
    """The event this caller sees for ``delivery``, or None when they may not see it."""
    doc, change = delivery.document, delivery.change
    if doc is None:  # gone since: its deletion follows
        return None
    deleted = change.kind == "deleted"
    reader = await _memo(delivery, "reader", lambda: _reader(feed, delivery))
    if reader is None:
        return None
    if deleted and doc.extends and (feed.filter != ast.TRUE or _reads(reader, "document")):
        # The deleted document's inherited values are gone with its lineage: a rule or filter
        # reading the document cannot be evaluated as it was, so the deletion stays unseen.
        return None
    if not await _readable(feed, delivery, reader):
        return None
    if feed.filter != ast.TRUE:
        body = await _memo(delivery, "body", lambda: _body(feed, delivery))
        defaults = feed.call.endpoint.facts.default_paths or {}
        if not matches(feed.filter, body, _sources(delivery), defaults):
            return None
    event: dict[str, Any] = await _memo(
        delivery, ("event", id(reader)), lambda: _event(feed, delivery, reader)
    )
    return event


async def _readable(feed: Feed, delivery: Delivery, reader: Endpoint) -> bool:
    """Whether a GET of the document by this caller would answer 200 (``guard.may_read``),
    with the document as GET shows it, and a rule decided by the document alone, computed
    once for every subscriber."""
    doc = delivery.document
    assert doc is not None
    call = feed.call
    if _reads(reader, "parent"):  # the parent as it is now, as the GET would read it
        return await may_read(call, doc)
    view = None
    if _reads(reader, "document"):
        view = await _memo(delivery, ("view", id(reader)), lambda: _view(feed, delivery, reader))
    access = reader.access
    if access.public or access.rule is None or not call.principal.authenticated:
        return admits(reader, call, context(call.principal, view))
    decided = await _memo(
        delivery,
        ("decided", id(reader)),
        _async(lambda rule: decided_without_caller(rule, AclContext(document=view)), access.rule),
    )
    if decided is not None:  # evaluate() answers this for every caller
        return bool(decided)
    return admits(reader, call, context(call.principal, view))


@functools.cache
def _reads_rule(access: Access, root: str) -> bool:
    return access.reads(root)


def _reads(endpoint: Endpoint, root: str) -> bool:
    """Whether the endpoint's rule reads ``root`` (remembered: asked per change and
    subscriber)."""
    return _reads_rule(endpoint.access, root)


async def _reader(feed: Feed, delivery: Delivery) -> Endpoint | None:
    doc = delivery.document
    assert doc is not None
    found = feed.call.endpoint.readers.find(doc.collection, doc.doc_id)
    return found.document if found is not None else None


async def _body(feed: Feed, delivery: Delivery) -> Any:
    doc = delivery.document
    assert doc is not None
    return doc.body if delivery.change.kind == "deleted" else await effective_body(feed.call, doc)


async def _view(feed: Feed, delivery: Delivery, reader: Endpoint) -> dict[str, Any]:
    doc = delivery.document
    assert doc is not None
    body = await _memo(delivery, "body", lambda: _body(feed, delivery))
    return document_view(body, reader.response_info, doc)


async def _event(feed: Feed, delivery: Delivery, reader: Endpoint) -> dict[str, Any]:
    doc, change = delivery.document, delivery.change
    assert doc is not None
    if change.kind == "deleted":
        data: dict[str, Any] = {"id": doc.doc_id}
    else:
        as_reader = Call(reader, feed.call.space, feed.call.request, {}, feed.call.principal)
        data = await rendered(as_reader, doc)
    return {"id": str(change.seq), "event": change.kind, "data": data}


async def _memo(delivery: Delivery, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
    """``compute()`` once per delivery (every subscriber of the worker shares it)."""
    if key not in delivery.memo:
        delivery.memo[key] = await compute()
    return delivery.memo[key]


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
