"""The one route table: which declared path template serves a request path.

Built once at start-up from ``(template, method, endpoint)`` triples, in the shape of
Starlette's ``Route``: a route knows its template, its compiled matcher, and its endpoints by
method. Where several templates match a path, ``match`` returns the one connexion prefers: at
the first segment where they differ, a literal beats a parameter (``/{collection}/_count``
before ``/{collection}/{id}``, ``/keyv/{key}`` before ``/{collection}/{id}``). A parameter
written ``{name:path}`` matches the rest of the path, slashes included (``/__ui/{asset:path}``).

The same table answers the ``Allow`` header of a 405, the shadowing and reserved-name checks,
the datastore's own system paths, the 404's space hint, the multi-collection read, which GETs
guard a document path (``$extends`` targets, parents), and the CLI's collection schemas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

E = TypeVar("E")


@dataclass(frozen=True)
class RouteSegment:
    """One template segment: a literal, or a parameter (``name`` set; ``rest`` for
    ``{name:path}``)."""

    text: str
    name: str | None = None
    rest: bool = False

    @classmethod
    def parse(cls, text: str) -> RouteSegment:
        """The segment ``text`` of a template."""
        if not (text.startswith("{") and text.endswith("}")):
            return cls(text)
        name, _, convertor = text[1:-1].partition(":")
        return cls(text, name, convertor == "path")

    @property
    def pattern(self) -> str:
        """The regular expression this segment matches."""
        if self.name is None:
            return re.escape(self.text)
        return ".+" if self.rest else "[^/]+"


@dataclass(frozen=True)
class Route(Generic[E]):
    """A declared path template, its matcher, and its endpoints by (lower-case) method."""

    template: str
    endpoints: Mapping[str, E]
    segments: tuple[RouteSegment, ...] = field(init=False)
    regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        segments = tuple(RouteSegment.parse(s) for s in self.template.strip("/").split("/") if s)
        body = "/".join(s.pattern for s in segments)
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "regex", re.compile("/" + body + "/?"))

    @property
    def methods(self) -> list[str]:
        """The declared methods, upper-case and sorted (an ``Allow`` header's list)."""
        return sorted(method.upper() for method in self.endpoints)

    @property
    def shape(self) -> tuple[str | None, ...]:
        """The template's literals, None for each parameter (``/a/{x}`` → ``("a", None)``)."""
        return tuple(None if s.name is not None else s.text for s in self.segments)

    @property
    def rank(self) -> tuple[int, ...]:
        """Ordering key: at the first differing segment, a literal (0) before a parameter."""
        return tuple(0 if s.name is None else 1 for s in self.segments)

    def matches(self, path: str) -> bool:
        """Whether this route's template matches ``path``."""
        return self.regex.fullmatch(path) is not None

    def overlaps(self, other: Route[E]) -> bool:
        """Whether a path could match both templates (as many segments, and at each one the
        same literal or a parameter on either side)."""
        return len(self.segments) == len(other.segments) and all(
            a.name is not None or b.name is not None or a.text == b.text
            for a, b in zip(self.segments, other.segments, strict=True)
        )


class RouteTable(Generic[E]):
    """Every route of a set of endpoints; ``match`` finds the one that serves a path."""

    def __init__(self, routes: Iterable[Route[E]]) -> None:
        self.routes = tuple(sorted(routes, key=lambda route: (route.rank, route.template)))
        # Every template in one pattern, one group each, in the order of preference: a full
        # match takes the first alternative that matches the whole path, so the group that
        # matched names the route a scan would find, in one call instead of one per route.
        self._any = re.compile("|".join(f"({route.regex.pattern})" for route in self.routes))

    @classmethod
    def of(cls, declared: Iterable[tuple[str, str, E]]) -> RouteTable[E]:
        """The table of ``(template, method, endpoint)`` triples (one route per template)."""
        by_template: dict[str, dict[str, E]] = {}
        for template, method, endpoint in declared:
            by_template.setdefault(template, {})[method.lower()] = endpoint
        return cls(Route(template, endpoints) for template, endpoints in by_template.items())

    def match(
        self, path: str, where: Callable[[Route[E]], bool] = lambda route: True
    ) -> Route[E] | None:
        """The route connexion would prefer for ``path`` among those ``where`` accepts."""
        found = self._any.fullmatch(path)
        if found is None or found.lastindex is None:
            return None
        first = self.routes[found.lastindex - 1]
        if where(first):
            return first
        return next((r for r in self.routes if where(r) and r.matches(path)), None)

    def at(
        self, shape: tuple[str | None, ...], where: Callable[[Route[E]], bool] = lambda route: True
    ) -> Route[E] | None:
        """The route ``where`` accepts whose template has this shape, if one does."""
        return next((r for r in self.routes if r.shape == shape and where(r)), None)

    def overlapped(self) -> frozenset[str]:
        """The templates another template can also match: only a request routed to one of
        these can have reached a less specific template than it should."""
        return frozenset(
            route.template
            for route in self.routes
            if any(other is not route and route.overlaps(other) for other in self.routes)
        )

    def literal_roots(self) -> frozenset[str]:
        """The literal first segments of the templates (``keyv``, ``queue``)."""
        return frozenset(
            r.segments[0].text for r in self.routes if r.segments and r.segments[0].name is None
        )


def declaring(
    method: str, accepts: Callable[[E], bool] = lambda endpoint: True
) -> Callable[[Route[E]], bool]:
    """A ``where`` for ``match``: the routes whose ``method`` endpoint ``accepts`` takes."""

    def where(route: Route[E]) -> bool:
        endpoint = route.endpoints.get(method)
        return endpoint is not None and accepts(endpoint)

    return where
