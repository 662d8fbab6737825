"""The ASGI app behind connexion: finds the operation connexion routed to and runs its handler.

connexion's middleware stack (routing, parameter validation, content types) runs first and
leaves the operation id in the ASGI scope; this dispatcher looks the endpoint up by it (no second
routing pass), runs the generic handler, and renders every error through ``problems``.
Requests connexion could not route (no such path) get 404 here, with the title the path's shape
suggests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from datastore.errors import CollectionNotFound, DatastoreError, DocumentNotFound
from datastore.http.endpoint import Call, Endpoint, Space
from datastore.http.problems import problem_response, unexpected_error

ROUTING = "connexion_routing"
SystemRoute = Callable[[Request], Awaitable[Response]]
SpaceRoute = Callable[[Request, "MountedSpace"], Awaitable[Response]]


@dataclass(frozen=True)
class MountedSpace:
    """A space and its endpoints by operation id, mounted at ``base_path``."""

    base_path: str
    space: Space
    endpoints: Mapping[str, Endpoint]


class Dispatcher:
    """The innermost ASGI app."""

    def __init__(
        self,
        mounts: Mapping[str, MountedSpace],
        system_routes: Mapping[str, SystemRoute] | None = None,
        space_routes: Mapping[str, SpaceRoute] | None = None,
    ) -> None:
        self.mounts = mounts
        self.system_routes = dict(system_routes or {})
        self.space_routes = dict(space_routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self._respond(scope, receive)
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        routing = scope.get("extensions", {}).get(ROUTING, {})
        operation_id = routing.get("operation_id")
        try:
            if operation_id is None:
                return await self._unrouted(scope, receive)
            mount = self.mounts[routing.get("api_base_path", "")]
            endpoint = mount.endpoints[operation_id]
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

    async def _unrouted(self, scope: Scope, receive: Receive) -> Response:
        path: str = scope["path"]
        route = self.system_routes.get(path.rstrip("/") or "/")
        if route is not None:
            return await route(Request(scope, receive))
        for base_path, mount in self.mounts.items():
            if base_path and not path.startswith(base_path + "/"):
                continue
            rest = path[len(base_path) :]
            space_route = self.space_routes.get(rest.rstrip("/"))
            if space_route is not None:
                return await space_route(Request(scope, receive), mount)
            if base_path:
                path = rest
                break
        segments = [s for s in path.split("/") if s]
        if len(segments) % 2 == 0 and segments:
            raise DocumentNotFound()
        raise CollectionNotFound()
