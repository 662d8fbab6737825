"""The data browser: ``GET /__admin`` (a single-page app shipped under ``datastore/admin/``) and,
under ``serve --dev`` only, ``GET <space>/__admin/why?path=...`` ("Why can't I?").

The page holds a credential (a JWT, an API key, or claims signed by ``/__jwt`` in development)
and calls the public API with it, like any other client: it is never more powerful than that
credential. Its routes are always in the route table, so when the page is off (``--admin`` not
given, not ``--dev``) they answer 404 whatever the blueprint declares (a dynamic
``/{collection}/{id}`` never sees ``/__admin/why``).

The explanation endpoint evaluates each operation's rule on a document for the caller and shows
the values the operands took, the document's included. It exists only under ``--dev``, where
``POST /__jwt`` signs any claims for anyone, so it tells nobody anything they could not read by
signing in as the document's owner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from datastore.auth.acl import explain
from datastore.auth.credentials import Principal
from datastore.blueprint.model import Kind
from datastore.errors import (
    BadRequest,
    CollectionNotFound,
    DocumentNotFound,
    Forbidden,
    InvalidParam,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
)
from datastore.http.dispatch import MountedSpace, SpaceRoute, SystemRoute
from datastore.http.endpoint import Endpoint
from datastore.http.guard import document_view
from datastore.http.security import context, gate
from datastore.http.shaping import json_response

STATIC = Path(__file__).resolve().parent.parent / "admin" / "static"
ASSETS = {
    "app.js": "text/javascript",
    "form.js": "text/javascript",
    "shared.js": "text/javascript",
    "why.js": "text/javascript",
    "ops.js": "text/javascript",
    "admin.css": "text/css",
}
MAX_PATH = 2048
HEADERS = {
    "Cache-Control": "no-store",
    # The page holds credentials: only its own files run, nothing frames it, and it talks to
    # this origin alone (the JSON config is data, not a script).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Datastore — data browser</title>
  <link rel="stylesheet" href="/__admin/static/admin.css">
  <link rel="icon" href="data:,">
  <script type="application/json" id="admin-config">{config}</script>
  <script type="module" src="/__admin/static/app.js"></script>
</head>
<body>
  <a class="skip" href="#main">Skip to content</a>
  <header id="identity-bar" aria-label="Identity"></header>
  <div class="layout">
    <nav id="tree" aria-label="Collections"></nav>
    <main id="main" tabindex="-1"><p>Loading…</p></main>
  </div>
  <div id="live-region" class="visually-hidden" aria-live="polite"></div>
</body>
</html>
"""


def admin_routes(
    enabled: bool, dev: bool, spaces: Mapping[str, tuple[str, str]]
) -> tuple[dict[str, SystemRoute], dict[str, SpaceRoute]]:
    """The page and its files (system routes), and the explanation (per space). ``spaces``:
    each space's base path → (name, title)."""
    config = {
        "dev": dev,
        "jwtURL": "/__jwt" if dev else None,
        "spaces": [
            {"name": name, "base": base, "title": title}
            for base, (name, title) in sorted(spaces.items())
        ],
    }
    # A script element's text is not HTML-decoded; only "</script" (or "<!--") could end it
    # early, and no "<" is left: JSON spells it \u003c.
    body = PAGE.format(config=json.dumps(config).replace("<", "\\u003c"))

    async def page(request: Request) -> Response:
        if not enabled:
            raise NotFound("The data browser is off (serve with --admin or --dev).")
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(headers={"Allow": "GET, HEAD"})
        return HTMLResponse(body, headers=HEADERS)

    async def asset(request: Request) -> Response:
        name = request.url.path.rsplit("/", 1)[-1]
        if not enabled or name not in ASSETS:
            raise NotFound()
        return FileResponse(
            STATIC / name,
            media_type=ASSETS[name],
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def why(request: Request, mount: MountedSpace) -> Response:
        if not (enabled and dev):
            raise NotFound()
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(headers={"Allow": "GET, HEAD"})
        return json_response(await explanation(request, mount))

    async def collections(request: Request, mount: MountedSpace) -> Response:
        if not enabled:
            raise NotFound()
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(headers={"Allow": "GET, HEAD"})
        return json_response(await stored_collections(request, mount))

    system: dict[str, SystemRoute] = {"/__admin": page, "/__admin/static/{asset:path}": asset}
    return system, {"/__admin/why": why, "/__admin/collections": collections}


MAX_COLLECTIONS = 1000
"""Most collection names ``GET <space>/__admin/collections`` answers."""


async def stored_collections(request: Request, mount: MountedSpace) -> dict[str, Any]:
    """The collections of the space that hold documents at the root, for an API key of the
    space (as the queue listings: operators hold keys, end users hold tokens, and the names
    of other users' dynamic collections are not theirs to see)."""
    space = mount.space
    principal = await space.authenticator.principal(request, space.name)
    if not principal.authenticated:
        raise Unauthorized("Listing the collections needs an API key of the space.")
    if principal.apikey_id is None:
        raise Forbidden("Only an API key of the space may list its collections.")
    names = await space.documents.root_collections(MAX_COLLECTIONS + 1)
    return {"collections": names[:MAX_COLLECTIONS], "more": len(names) > MAX_COLLECTIONS}


def _document_path(raw: str | None) -> tuple[str, str]:
    """``/posts/p1`` → (``posts``, ``p1``); BadRequest for anything but a document path."""
    parts = [p for p in (raw or "").split("/") if p]
    if not raw or not raw.startswith("/") or len(raw) > MAX_PATH or len(parts) % 2 or not parts:
        raise BadRequest(
            invalid_params=[InvalidParam("path", "must be a document path like /posts/p1")]
        )
    return "/".join(parts[:-1]), parts[-1]


async def explanation(request: Request, mount: MountedSpace) -> dict[str, Any]:
    """Each operation on the document ``?path=`` (and on its collection) for this caller: the
    rule, the values its operands took and the result, as the handlers would decide it."""
    collection, doc_id = _document_path(request.query_params.get("path"))
    space = mount.space
    principal = await space.authenticator.principal(request, space.name)
    document_route = mount.routes.match(f"/{collection}/{doc_id}")
    collection_route = mount.routes.match(f"/{collection}")
    if document_route is None and collection_route is None:
        raise CollectionNotFound()
    view: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None
    reader = document_route.endpoints.get("get") if document_route else None
    info = reader.response_info if reader is not None else None
    try:
        doc = await space.documents.get(collection, doc_id)
    except DocumentNotFound:
        doc = None
    if doc is not None:
        view = document_view(await space.documents.effective(doc), info, doc)
    if "/" in collection:
        grand = await space.documents.get_parent(collection)
        parent = document_view(grand.body, None, grand) if grand is not None else None
    operations = []
    for route, kind in ((document_route, "document"), (collection_route, "collection")):
        if route is None:
            continue
        for method, endpoint in sorted(route.endpoints.items()):
            if endpoint.op.kind not in (Kind.DOCUMENT, Kind.COLLECTION):
                continue
            operations.append(_operation(endpoint, method, kind, principal, view, parent))
    return {
        "path": f"/{collection}/{doc_id}",
        "found": doc is not None,
        "identity": _identity(principal),
        "operations": operations,
    }


def _identity(principal: Principal) -> dict[str, Any]:
    return {
        "authenticated": principal.authenticated,
        "claims": dict(principal.claims) if principal.claims is not None else None,
        "apikey": principal.apikey_id,
        "readonly": principal.apikey_readonly,
    }


def _operation(
    endpoint: Endpoint,
    method: str,
    kind: str,
    principal: Principal,
    view: dict[str, Any] | None,
    parent: dict[str, Any] | None,
) -> dict[str, Any]:
    """One operation's decision, in the order the datastore takes it (``security.gate``, then
    the rule)."""
    access = endpoint.access
    shown: dict[str, Any] = {
        "method": method.upper(),
        "path": endpoint.op.path,
        "on": kind,
        "rule": access.rule.text if access.rule is not None else None,
    }
    outcome = gate(access, endpoint.op, principal)
    if outcome.decided is not None:
        return {**shown, "result": outcome.decided, "reason": outcome.value}
    assert access.rule is not None and access.rule.expr is not None
    document = view if kind == "document" else None
    tree = explain(access.rule.expr, context(principal, document, parent))
    reason = "the rule holds" if tree["result"] else "the rule does not hold"
    if kind == "document" and method == "put":
        reason += " (on the stored document; a PUT is checked on the body it sends)"
    if kind == "collection" and method == "post" and access.reads("document"):
        reason += " (a create is checked on the body it sends: no document here)"
    return {**shown, "result": tree["result"], "reason": reason, "tree": tree}
