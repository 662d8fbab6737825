"""connexion's routes grouped by first segment answer as the plain scan of them does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router

from datastore.http.segment_routes import SegmentIndex, first_segment

TEMPLATES = ["/a", "/a/{id}", "/{c}", "/{c}/{id}", "/{c}/_count", "/a/_count", "/b/{rest:path}"]
METHODS = ["GET", "PUT", "DELETE"]
PATHS = st.lists(st.sampled_from(["a", "b", "c", "_count", "x y", ""]), min_size=0, max_size=3)


def _endpoint(name: str) -> Any:
    async def answer(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {sorted(request.path_params.items())}")

    return answer


def _routes(declared: list[tuple[str, str]]) -> list[Route]:
    return [Route(t, _endpoint(f"{m} {t}"), methods=[m]) for t, m in declared]


async def _answer(router: Router, method: str, path: str) -> tuple[int, str]:
    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(method, path, follow_redirects=False)
    return response.status_code, response.text


@settings(max_examples=300, deadline=None)
@example(  # a parameter route declared before a literal one: the scan takes it first
    declared=[("/{c}/{id}", "GET"), ("/a/{id}", "GET")],
    segments=["a", "x"],
    slash=False,
    method="GET",
)
@example(  # a 405 from the literal route wins over a later parameter route's 404
    declared=[("/a/{id}", "PUT"), ("/{c}/{id}", "GET")],
    segments=["a", "x"],
    slash=False,
    method="DELETE",
)
@given(
    declared=st.lists(
        st.tuples(st.sampled_from(TEMPLATES), st.sampled_from(METHODS)), min_size=1, unique=True
    ),
    segments=PATHS,
    slash=st.booleans(),
    method=st.sampled_from(METHODS),
)
def test_the_groups_choose_the_route_the_scan_chooses(
    declared: list[tuple[str, str]], segments: list[str], slash: bool, method: str
) -> None:
    path = "/" + "/".join(segments) + ("/" if slash and segments else "")
    assume(not path.startswith("//"))
    plain = Router(routes=_routes(declared))
    indexed = Router(routes=[SegmentIndex(_routes(declared))])
    assert asyncio.run(_answer(indexed, method, path)) == asyncio.run(_answer(plain, method, path))


def test_each_segment_has_its_routes_and_the_parameter_routes_in_order() -> None:
    routes = _routes([("/{c}/{id}", "GET"), ("/a/{id}", "GET"), ("/b", "GET"), ("/{c}", "PUT")])
    index = SegmentIndex(routes)
    paths = {head: [r.path for r in rs] for head, rs in index.by_head.items()}
    assert paths == {"a": ["/{c}/{id}", "/a/{id}", "/{c}"], "b": ["/{c}/{id}", "/b", "/{c}"]}
    assert [r.path for r in index.rest] == ["/{c}/{id}", "/{c}"]
    assert first_segment("/a/b") == "a" and first_segment("/") == "" and first_segment("") == ""


def test_a_blueprint_of_many_collections_tries_a_handful_of_routes() -> None:
    declared = [(f"/c{n}{tail}", m) for n in range(50) for tail in ("", "/{id}") for m in METHODS]
    index = SegmentIndex(_routes(declared))
    assert len(index.by_head["c49"]) == 6 and index.rest == []
