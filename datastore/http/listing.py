"""Collection reads: both query dialects on every collection, offsets or keyset pages.

A request may combine Squiz parameters (``filters``, ``sort``, ``page[...]``) and Codehooks ones
(``q``, ``h``, ``limit``, ``offset``, ``sort``, ``fields``, ``omit``, or URL conditions); the
filters are ANDed with each other and with the caller's access filter, all compiled into one SQL
statement. With ``page[...]`` parameters the answer is ``{"data", "links": {"prev", "next"}}``
with keyset cursors that carry the filters and the sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from datastore.blueprint.schemas import SchemaInfo
from datastore.documents.sources import id_property, render
from datastore.errors import BadRequest, CollectionNotFound, InvalidParam
from datastore.http.endpoint import Call
from datastore.http.guard import listing_filter, listing_parent
from datastore.http.shaping import resolved
from datastore.query import ast, cursor, filterable
from datastore.query.limits import check_query, check_sort
from datastore.query.mongo import ListRequest, apply_projection, parse_list_request
from datastore.query.selection import Keyset, Rule, Selection
from datastore.query.squiz import PageRequest, parse_filters, parse_page, parse_sort
from datastore.storage.documents import StoredDocument

SQUIZ_KEYS = ("filters",)


@dataclass(frozen=True)
class Listing:
    """What a list-like request asks for: the filter, order, window and shape, as parsed."""

    filter: ast.Node
    sort: tuple[ast.SortKey, ...]
    sort_text: str
    request: ListRequest
    page: PageRequest | None
    has_selector: bool


def _types(info: SchemaInfo | None) -> Any:
    def lookup(path: tuple[str, ...]) -> tuple[str, ...] | None:
        if info is None:
            return None
        if len(path) == 2 and path[1] == "[]":
            return info.array_item_types.get(path[0]) or None
        if len(path) == 1:
            return info.property_types.get(path[0]) or None
        return None

    return lookup


def select(call: Call, info: SchemaInfo | None) -> Listing:
    """Parse every query parameter of a list-like request; raises BadRequest."""
    params = call.request.query_params  # never with U+0000: see http/dispatch.py
    pairs = [(k, v) for k, v in params.multi_items() if k not in SQUIZ_KEYS]
    squiz_sort = params.get("sort", "")
    uses_squiz_sort = squiz_sort.lstrip("+- ").startswith("document.")
    if uses_squiz_sort:
        pairs = [(k, v) for k, v in pairs if k != "sort"]
    request = parse_list_request(
        pairs,
        default_limit=call.settings.default_limit,
        max_limit=call.settings.max_limit,
        max_json_depth=call.settings.max_json_depth,
    )
    settings = call.settings
    node = request.filter
    check_query(node, "q" if "q" in params else "query", settings.max_query_nodes)
    has_selector = request.has_selector
    if "filters" in params:
        squiz = parse_filters(params["filters"], _types(info))
        check_query(squiz, "filters", settings.max_query_nodes)
        node = squiz if node == ast.TRUE else ast.And((node, squiz))
        has_selector = True
    sort = parse_sort(squiz_sort) if uses_squiz_sort else request.sort
    check_sort(sort, "sort" if "sort" in params else "h.sort", settings.max_sort_keys)
    page = parse_page(
        dict(params),
        default_size=call.settings.default_limit,
        max_size=call.settings.max_limit,
    )
    sort_text = squiz_sort if uses_squiz_sort else params.get("sort", "") + params.get("h", "")
    return Listing(node, sort, sort_text, request, page, has_selector)


async def read_collection(call: Call, collection: str) -> Any:
    """The JSON answer of a collection GET (an array, a page object, or a count)."""
    info = call.endpoint.response_info or call.endpoint.document_info
    listing = select(call, info)
    access = listing_filter(call, await listing_parent(call, collection))
    filterable.check(listing.filter)
    documents, facts = call.space.documents, call.endpoint.facts
    if listing.request.count_only:
        selected = Selection(listing.filter, access)
        count = await documents.count(collection, selected, facts)
        await require_collection(call, collection, found=count > 0)
        return [{"count": count}]
    if listing.page is not None:
        page = await _page(call, collection, listing, access, info)
        await require_collection(call, collection, found=bool(page["data"]))
        return page
    request = listing.request
    selection = Selection(
        listing.filter, access, listing.sort, limit=request.limit, offset=request.offset
    )
    docs = await documents.find(collection, selection, facts)
    await require_collection(call, collection, found=bool(docs))
    return await _shape(call, docs, listing, info)


async def require_collection(call: Call, collection: str, *, found: bool) -> None:
    """A dynamic (Codehooks) collection exists while it holds a document: an answer that
    found nothing in one that holds nothing is 404 ``Collection not found``."""
    if found or not call.op.dynamic:
        return
    if not await call.space.documents.holds_any(collection):
        raise CollectionNotFound(absent_collection_hint(collection))


def absent_collection_hint(collection: str, doc_id: str | None = None) -> str:
    """Why a dynamic collection is not there, and the Codehooks habit that may lead here."""
    hint = f"No collection {collection!r} exists: a collection exists while it holds a document."
    if doc_id is not None and "/" not in collection:
        hint += (
            f" Codehooks URLs begin with a space name; if {collection!r} is one, this server "
            f"is not addressed by space: request /{doc_id}."
        )
    return hint


async def _shape(
    call: Call, docs: list[StoredDocument], listing: Listing, info: SchemaInfo | None
) -> list[Any]:
    # A listing that declares no schema shows documents as their GET does.
    response_info = call.endpoint.response_info or call.endpoint.document_info
    bodies = await resolved(call, docs, response_info)
    id_prop = id_property(info, call.op.dynamic)
    out = []
    for doc in docs:
        body, lineage = bodies[doc.pk]
        shown = render(doc, response_info, dynamic=call.op.dynamic, body=body, lineage=lineage)
        out.append(apply_projection(shown, listing.request.projection, id_prop))
    return out


async def _page(
    call: Call,
    collection: str,
    listing: Listing,
    access: Rule | None,
    info: SchemaInfo | None,
) -> dict[str, Any]:
    page = listing.page
    assert page is not None
    order = f"{call.space.db.dialect}|{listing.sort_text}|{listing.sort}"
    backwards = page.before is not None
    boundary = page.before if backwards else page.after
    keyset = None
    if boundary is not None:
        name = "page[before]" if backwards else "page[after]"
        keyset = Keyset(cursor.decode(boundary, order, name), backwards, name)
    selection = Selection(listing.filter, access, listing.sort, limit=page.size + 1, keyset=keyset)
    documents, facts = call.space.documents, call.endpoint.facts
    rows = await documents.page(collection, selection, facts)
    more = len(rows) > page.size
    rows = rows[: page.size]
    if backwards:
        rows.reverse()
    data = await _shape(call, [doc for doc, _ in rows], listing, info)
    has_next = (more if not backwards else True) and bool(rows)
    has_prev = (boundary is not None if not backwards else more) and bool(rows)
    links = {
        "prev": _link(call, "page[before]", cursor.encode(order, rows[0][1])) if has_prev else None,
        "next": _link(call, "page[after]", cursor.encode(order, rows[-1][1])) if has_next else None,
    }
    return {"data": data, "links": links}


def _link(call: Call, name: str, token: str) -> str:
    params = [
        (k, v)
        for k, v in call.request.query_params.multi_items()
        if k not in ("page[after]", "page[before]")
    ]
    params.append((name, token))
    return call.request.url.path + "?" + urlencode(params)


def require_selector(listing: Listing) -> None:
    """``_byquery`` refuses a request without any selector (``q={}`` selects everything)."""
    if not listing.has_selector:
        raise BadRequest(
            "Say which documents: give q (q={} for all of them) or conditions.",
            invalid_params=[InvalidParam("q", "is required")],
        )
