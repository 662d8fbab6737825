"""The ASGI app behind connexion: finds the operation connexion routed to and runs its handler.

connexion's middleware stack (routing, parameter validation, content types) runs first and
leaves the operation id in the ASGI scope; this dispatcher looks the endpoint up by it (no second
routing pass), runs the generic handler, and renders every error through ``problems``.
Requests connexion could not route (no such path) get 404 here, with the title the path's shape
suggests.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from connexion.middleware.abstract import ROUTING_CONTEXT
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from datastore.errors import (
    BadRequest,
    CollectionNotFound,
    DatastoreError,
    DocumentNotFound,
    InvalidParam,
    MethodNotAllowed,
)
from datastore.http.endpoint import Call, Endpoint, Space
from datastore.http.problems import problem_response, unexpected_error
from datastore.http.routes import Route, RouteTable

SystemRoute = Callable[[Request], Awaitable[Response]]
SpaceRoute = Callable[[Request, "MountedSpace"], Awaitable[Response]]


@dataclass(frozen=True)
class MountedSpace:
    """A space, its endpoints by operation id and its route table, mounted at ``base_path``
    (the table's templates are relative to it)."""

    base_path: str
    space: Space
    endpoints: Mapping[str, Endpoint]
    routes: RouteTable[Endpoint]

    def relative(self, path: str) -> str | None:
        """``path`` below the base path, or None when it is not under it."""
        if not self.base_path:
            return path
        return path[len(self.base_path) :] if path.startswith(self.base_path + "/") else None


def best_route(mounts: Mapping[str, MountedSpace], path: str) -> Route[Endpoint] | None:
    """The route connexion would prefer for the request ``path`` (for ``Allow``, shadowing
    and the 404's space hint)."""
    found = [
        route
        for mount in mounts.values()
        if (rest := mount.relative(path)) is not None
        and (route := mount.routes.match(rest)) is not None
    ]
    return min(found, key=lambda route: route.rank, default=None)


class Dispatcher:
    """The innermost ASGI app: the endpoint connexion routed to, by operation id."""

    def __init__(self, mounts: Mapping[str, MountedSpace]) -> None:
        self.mounts = mounts
        self.roots = {base: m.routes.literal_roots() for base, m in mounts.items()}
        self.overlapped = {base: m.routes.overlapped() for base, m in mounts.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self._respond(scope, receive)
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        routing = scope.get("extensions", {}).get(ROUTING_CONTEXT, {})
        operation_id = routing.get("operation_id")
        try:
            if operation_id is None:
                return await self._unrouted(scope, receive)
            base_path = str(routing.get("api_base_path", "")).rstrip("/")
            mount = self.mounts.get(base_path)
            endpoint = mount.endpoints.get(operation_id) if mount is not None else None
            if mount is None or endpoint is None:
                return await self._unrouted(scope, receive)
            observed = scope.get("datastore.observed")
            if isinstance(observed, dict):
                observed["operation"] = operation_id
                observed["space"] = mount.space.name
            if endpoint.op.path in self.overlapped[base_path]:
                self._refuse_shadowed(scope, mount, endpoint.op.path)
            if endpoint.op.dynamic:
                self._refuse_reserved(scope, endpoint, self.roots.get(base_path, frozenset()))
            _refuse_undecodable(scope, endpoint)
            _refuse_undecodable_query(scope.get("query_string"))
            request = Request(scope, receive)
            call = Call(endpoint, mount.space, request, dict(scope.get("path_params", {})))
            call.principal = await mount.space.authenticator.admit(
                request, mount.space.name, endpoint.op, endpoint.access
            )
            return await endpoint.handler(call)
        except DatastoreError as error:
            return problem_response(error)
        except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into 500s
            return unexpected_error(exc)

    @staticmethod
    def _refuse_shadowed(scope: Scope, mount: MountedSpace, template: str) -> None:
        """connexion falls back to a less specific template when the method is not declared
        on the one that matches best: ``PATCH /keyv/k`` reaches ``/{collection}/{id}`` when
        ``/keyv/{key}`` declares no PATCH, ``PUT /c/_count`` reaches ``/{collection}/{id}``.
        Such a request is a 405 with the best template's methods (a collection may not be
        called ``keyv``, nor a document ``_count``)."""
        best = mount.routes.match(mount.relative(str(scope["path"])) or "")
        if best is not None and best.template != template:
            raise MethodNotAllowed(headers={"Allow": ", ".join(best.methods)})

    @staticmethod
    def _refuse_reserved(scope: Scope, endpoint: Endpoint, roots: frozenset[str]) -> None:
        """A dynamic collection may not take the name of a literal root of the blueprint
        (``queue`` when ``/queue/{topic}`` is declared): its documents could be listed at
        ``/queue`` but never read at ``/queue/{id}``. No such collection exists: 404."""
        name = scope.get("path_params", {}).get(endpoint.op.segments[0].param or "")
        if name in roots:
            raise CollectionNotFound(f"{name!r} names the blueprint's own paths, not a collection.")

    async def _unrouted(self, scope: Scope, receive: Receive) -> Response:
        path: str = scope["path"]
        base = ""
        for base_path in self.mounts:
            if base_path and path.startswith(base_path + "/"):
                base, path = base_path, path[len(base_path) :]
                break
        segments = [s for s in path.split("/") if s]
        hint = self._space_hint(base, segments)
        if len(segments) % 2 == 0 and segments:
            raise DocumentNotFound(hint)
        raise CollectionNotFound(hint)

    def _space_hint(self, base: str, segments: list[str]) -> str | None:
        """When the path would route without its first segment, that segment is likely a
        Codehooks space name (``/dev/events``): say where the collection is served."""
        if len(segments) < 2:
            return None
        rest = "/" + "/".join(segments[1:])
        if best_route(self.mounts, base + rest) is None:
            return None
        return (
            f"No collection {segments[0]!r} is served here. Codehooks URLs begin with a space "
            f"name; if {segments[0]!r} is one, this server is not addressed by space: request "
            f"{base}{rest}."
        )


def _refuse_undecodable(scope: Scope, endpoint: Endpoint) -> None:
    """Raise BadRequest naming the path parameter whose percent-encoded bytes are not UTF-8.
    The server decodes them with replacement, so ``/events/%FF`` and ``/events/%FE`` would both
    reach the id U+FFFD (one document under two names); no id, collection name or key is taken
    from such a path."""
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or (b"%" not in raw and raw.isascii()):
        return
    segments = raw.rstrip(b"/").split(b"/")
    for index, segment in enumerate(reversed(endpoint.op.segments), start=1):
        if index > len(segments) or _is_utf8(segments[-index]):
            continue
        name = segment.param or "path"
        reason = "is not UTF-8 text (its percent-encoded bytes must spell UTF-8)"
        detail = f"The path's {name} is not UTF-8 text."
        raise BadRequest(detail, invalid_params=[InvalidParam(name, reason)])
    if not _is_utf8(raw):
        raise BadRequest(invalid_params=[InvalidParam("path", "is not UTF-8 text")])


def _refuse_undecodable_query(raw: object) -> None:
    """Raise BadRequest naming the query parameter whose name or value is not UTF-8 once
    percent-decoded: it would be read with U+FFFD in place (``q={"_id":"%FF"}`` found the
    document ``"\ufffd"``)."""
    if not isinstance(raw, bytes) or (b"%" not in raw and raw.isascii()):
        return
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        if not (_is_utf8(name) and _is_utf8(value)):
            shown = unquote_to_bytes(name).decode("utf-8", "replace") or "query"
            reason = "is not UTF-8 text (its percent-encoded bytes must spell UTF-8)"
            raise BadRequest(
                "The query string is not UTF-8 text.",
                invalid_params=[InvalidParam(shown, reason)],
            )


def _is_utf8(raw: bytes) -> bool:
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_PATH = BadRequest(
    "The path may not contain control characters.",
    invalid_params=[
        InvalidParam("path", "must not contain control characters (U+0000-U+001F, U+007F)")
    ],
)
"""No id, collection name, key or topic may hold one, and the router would misread them (a
trailing newline matches ``$``): such paths are refused before any routing."""
_NUL_IN_QUERY = BadRequest(
    "The query may not contain the NUL character.",
    invalid_params=[InvalidParam("query", "contains a NUL character (%00)")],
)
"""Nothing can store or compare U+0000 (PostgreSQL's text and JSONB refuse it), and in a
parameter name it became part of the SQL (a URL condition's field): it cut PostgreSQL's
statement short (500) and SQLite refused it (503). Refused in every name and value, on every
route, before routing."""


def _refused(scope: Scope) -> BadRequest | None:
    """The error for a request whose path or query no route may see, if it is one."""
    if _CONTROL.search(scope["path"]):
        return _CONTROL_IN_PATH
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:  # unquoting makes U+0000 of nothing else
        return _NUL_IN_QUERY
    return None


class SystemRoutes:
    """ASGI middleware in front of connexion: the datastore's own endpoints, matched before
    the blueprint's routes (so a dynamic ``/{collection}`` cannot shadow them): exact paths like
    ``/__health``, the rest of a path (``/__ui/{asset:path}``), and per-space paths like
    ``/<space>/openapi.json``. ``routes`` is their table (``system_table``); every method
    reaches a system route's one handler, under the key ``"*"``."""

    def __init__(self, app: Any, routes: RouteTable[SystemRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = _refused(scope) if scope["type"] == "http" else None
        if refused is not None:
            await problem_response(refused)(scope, receive, send)
            return
        route = self.routes.match(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await route.endpoints["*"](Request(scope, receive))
        except DatastoreError as error:
            response = problem_response(error)
        except Exception as exc:  # noqa: BLE001 - crashes become 500s here as in the dispatcher
            response = unexpected_error(exc)
        await response(scope, receive, send)


def system_table(
    mounts: Mapping[str, MountedSpace],
    system_routes: Mapping[str, SystemRoute],
    space_routes: Mapping[str, SpaceRoute],
) -> RouteTable[SystemRoute]:
    """The system routes' table: ``system_routes`` by template, and each of ``space_routes``
    under every space's base path, bound to that space."""
    declared = [(template, "*", route) for template, route in system_routes.items()]
    declared += [
        (mount.base_path + template, "*", _bound(route, mount))
        for mount in mounts.values()
        for template, route in space_routes.items()
    ]
    return RouteTable.of(declared)


def _bound(route: SpaceRoute, mount: MountedSpace) -> SystemRoute:
    """``route`` answering for ``mount``."""

    async def bound(request: Request) -> Response:
        return await route(request, mount)

    return bound
