"""``POST /__resources/collections``: read several collections in one request (Squiz).

The body names collection paths (``{"collections": ["/events", "/users/u1/events"]}``) and may
carry ``filters``, ``sort`` and ``limit`` as in a collection GET. Allowed only when the caller
passes every collection's rule and no collection rule reads ``parent``; each collection's
documents are filtered by its own document GET rule, as its listing is. The answer is
``{"data": [...]}`` in creation order, each document tagged with its collection path in
``$collection``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from datastore.auth.acl import AclContext
from datastore.blueprint.model import Kind
from datastore.documents.sources import render
from datastore.errors import BadRequest, CollectionNotFound, Forbidden, InvalidParam, Unauthorized
from datastore.http.dispatch import MountedSpace
from datastore.http.endpoint import Endpoint, Space
from datastore.http.requests import parse_json, read_body
from datastore.http.routes import declaring
from datastore.http.security import allowed, context, list_filter
from datastore.http.shaping import json_response, shows_lineage
from datastore.query import ast
from datastore.query.limits import check_query, check_sort
from datastore.query.selection import CollectionFacts
from datastore.query.squiz import parse_filters, parse_sort
from datastore.storage.documents import StoredDocument

MAX_COLLECTIONS = 20


def _match(mount: MountedSpace, path: str) -> tuple[Endpoint, str]:
    """The collection GET serving the collection ``path`` (by the space's route table), and
    the collection's path."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not path.startswith("/") or not parts or len(parts) % 2 == 0:
        raise BadRequest(
            invalid_params=[InvalidParam("collections", f"{path!r} is not a collection path")]
        )
    collection = "/".join(parts)
    route = mount.routes.match("/" + collection, declaring("get", _lists))
    if route is None:
        raise CollectionNotFound(f"No collection at {path}.")
    return route.endpoints["get"], collection


def _lists(endpoint: Endpoint) -> bool:
    return endpoint.op.kind is Kind.COLLECTION


def _facts(endpoint: Endpoint) -> CollectionFacts:
    """A collection's documents as the compiler sees them here: with the defaults of its
    document GET's schema (else its listing's)."""
    info = endpoint.document_info or endpoint.response_info
    return CollectionFacts(info.default_paths if info else None, inherits=endpoint.inherits)


def _readable(
    endpoint: Endpoint, collection: str, ctx: AclContext, filters: Any, space: Space
) -> tuple[str, ast.Node, CollectionFacts]:
    """The documents of ``collection`` the caller may read that match the ``filters``."""
    info = endpoint.document_info or endpoint.response_info
    node = list_filter(endpoint.document_access, ctx)
    if isinstance(filters, str):
        types = info.property_types if info else {}
        squiz = parse_filters(filters, lambda p: types.get(p[0]) if len(p) == 1 else None)
        check_query(squiz, "filters", space.settings.max_query_nodes)
        node = ast.And((node, squiz))
    return collection, node, _facts(endpoint)


async def read_collections(request: Request, mount: MountedSpace) -> Response:
    """The multi-collection read."""
    if request.method != "POST":
        from datastore.errors import MethodNotAllowed

        raise MethodNotAllowed()
    space = mount.space
    body = parse_json(await read_body(request, space.settings.max_body_bytes), request.headers, 16)
    paths = body.get("collections") if isinstance(body, dict) else None
    if not isinstance(paths, list) or not paths or len(paths) > MAX_COLLECTIONS:
        raise BadRequest(
            invalid_params=[
                InvalidParam("collections", f"must list 1 to {MAX_COLLECTIONS} collection paths")
            ]
        )
    if not all(isinstance(p, str) for p in paths):
        raise BadRequest(invalid_params=[InvalidParam("collections", "must be strings")])
    matched = [_match(mount, p) for p in paths]
    principal = await space.authenticator.principal(request, space.name)
    ctx = context(principal)
    for endpoint, _ in matched:
        access = endpoint.access
        if access.reads("parent"):
            raise BadRequest(
                "Collections whose rule reads parent cannot be read together.",
                invalid_params=[InvalidParam("collections", "a collection rule reads parent")],
            )
        if not access.public and not principal.authenticated:
            raise Unauthorized("This operation needs a bearer token or an API key.")
        if not allowed(access, ctx) or (access.rule is None and endpoint.op.security is None):
            raise Forbidden()
    filters = body.get("filters") if isinstance(body, dict) else None
    sort = _sort(body.get("sort") if isinstance(body, dict) else None)
    check_sort(sort, "sort", space.settings.max_sort_keys)
    limit = body.get("limit", space.settings.default_limit) if isinstance(body, dict) else 0
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 0 < limit <= space.settings.max_limit
    ):
        raise BadRequest(invalid_params=[InvalidParam("limit", "must be a whole number in range")])
    # Each collection is filtered by its own document GET rule, compiled with its own
    # defaults, so every document shown is one its GET would answer.
    parts = [
        _readable(endpoint, collection, ctx, filters, space) for endpoint, collection in matched
    ]
    facts = _facts(matched[0][0])
    docs = await space.documents.find_in(parts, sort=sort, facts=facts, limit=limit)
    return json_response({"data": await _shown(space, matched, docs)})


async def _shown(
    space: Space, matched: list[tuple[Endpoint, str]], docs: list[StoredDocument]
) -> list[dict[str, Any]]:
    """Each document as its GET shows it (inherited values, and its lineage where the
    collection's schema shows it), tagged with its collection."""
    by_collection = {collection: endpoint for endpoint, collection in matched}
    family = any(shows_lineage(endpoint.response_info) for endpoint, _ in matched)
    bodies = await space.documents.resolve(docs, family=family)
    data: list[dict[str, Any]] = []
    for doc in docs:
        endpoint = by_collection[doc.collection]
        body, lineage = bodies[doc.pk]
        info, dynamic = endpoint.response_info, endpoint.op.dynamic
        shown = render(doc, info, dynamic=dynamic, body=body, lineage=lineage)
        shown["$collection"] = "/" + doc.collection
        data.append(shown)
    return data


def _sort(text: Any) -> tuple[ast.SortKey, ...]:
    """The body's ``sort`` (a Squiz sort string) as sort keys; none when absent or empty."""
    if text is None or text == "":
        return ()
    if not isinstance(text, str):
        raise BadRequest(invalid_params=[InvalidParam("sort", "must be a string")])
    return parse_sort(text)
