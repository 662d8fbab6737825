"""connexion's routing, indexed by the path's first segment.

connexion's ``RoutingMiddleware`` adds one Starlette ``Route`` per path *and method* to a
``Router``, which tries them in order on every request: a blueprint of 50 collections had 312
routes in front of its last collection, and a request there cost 200 µs more CPU than one to
its first (``bench/http/startup.py``'s blueprint). ``SegmentRoutingMiddleware`` is connexion's
middleware with each API's routes indexed (``SegmentIndex``): by literal first segment, the
routes that start with that segment *and* those whose first segment is a parameter, in their
original order. A request tries the routes of its own first segment (only those can match it)
and answers exactly as the full scan would: the first route that matches fully, else the first
that matches but for the method (a 405), else nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connexion.middleware.routing import RoutingMiddleware
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Receive, Scope, Send

_MATCHED = "datastore.segment_route"
"""Child-scope key: the route of a group that matched (its ``handle`` hands over to it)."""


def route_path(scope: Scope) -> str:
    """The path below the mount the router serves (as Starlette's routes read it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path != root and path[len(root)] == "/":
        return path[len(root) :]
    return "" if root and path == root else path


def first_segment(path: str) -> str:
    """``/a/b`` → ``a``; ``/`` → ``""``."""
    return path[1:].split("/", 1)[0] if path.startswith("/") else ""


def literal_head(route: BaseRoute) -> str | None:
    """The literal first segment of ``route``'s path; None when it may match any (a parameter,
    or a route that is not a plain ``Route``)."""
    if not isinstance(route, Route):
        return None
    head = first_segment(route.path)
    return None if "{" in head else head


class SegmentIndex(BaseRoute):
    """A router's routes by the literal first segment of their paths: for each segment, in
    the router's order, the routes that start with it and those that start with a parameter
    (the only ones a path starting with that segment can match); ``rest``, the latter alone,
    for a path whose first segment no route names."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        heads = dict.fromkeys(h for h in map(literal_head, routes) if h is not None)
        self.by_head = {h: [r for r in routes if literal_head(r) in (h, None)] for h in heads}
        self.rest = [route for route in routes if literal_head(route) is None]

    def candidates(self, scope: Scope) -> list[BaseRoute]:
        """The routes that can match the request of ``scope``, in order."""
        return self.by_head.get(first_segment(route_path(scope)), self.rest)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        partial: tuple[Match, Scope] | None = None
        for route in self.candidates(scope):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, _MATCHED: route}
            if match is Match.PARTIAL and partial is None:
                partial = match, {**child, _MATCHED: route}
        return partial if partial is not None else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_MATCHED)
        scope["route"] = route
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NotImplementedError  # connexion builds no URLs from its routing table


class SegmentRoutingMiddleware(RoutingMiddleware):  # type: ignore[misc]  # connexion: untyped
    """connexion's ``RoutingMiddleware``, each API's routes grouped by first segment."""

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        super().add_api(*args, **kwargs)
        for mount in self.router.routes:
            if isinstance(mount, Mount):
                router: Any = mount.app
                routes = getattr(router, "routes", None)
                if routes and not any(isinstance(r, SegmentIndex) for r in routes):
                    router.routes = [SegmentIndex(routes)]
