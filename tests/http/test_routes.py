"""The route table: the template connexion would prefer, overlaps, literal roots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from datastore.http.routes import RouteTable, declaring

TABLE = RouteTable.of(
    [
        ("/{collection}/{id}", "get", "document get"),
        ("/{collection}/{id}", "patch", "document patch"),
        ("/{collection}/_count", "get", "count"),
        ("/keyv/{key}", "get", "kv get"),
        ("/keyv/{key}", "put", "kv put"),
        ("/{collection}", "get", "list"),
        ("/__ui/{asset:path}", "*", "asset"),
    ]
)


def template(path: str) -> str | None:
    route = TABLE.match(path)
    return route.template if route is not None else None


def test_a_literal_beats_a_parameter_at_the_first_differing_segment() -> None:
    assert template("/events/_count") == "/{collection}/_count"
    assert template("/keyv/k") == "/keyv/{key}"
    assert template("/events/e1/") == "/{collection}/{id}"
    route = TABLE.match("/keyv/k")
    assert route is not None and route.methods == ["GET", "PUT"]
    assert TABLE.match("/a/b/c") is None


def test_where_limits_the_routes_considered() -> None:
    patched = TABLE.match("/keyv/k", declaring("patch"))
    assert patched is not None and patched.endpoints["patch"] == "document patch"


def test_a_path_parameter_takes_the_rest_of_the_path() -> None:
    assert template("/__ui/a/b.js") == "/__ui/{asset:path}"
    assert TABLE.match("/__ui/", declaring("*")) is None


def test_overlaps_and_literal_roots() -> None:
    assert TABLE.overlapped() == {
        "/{collection}/{id}",
        "/{collection}/_count",
        "/keyv/{key}",
        "/__ui/{asset:path}",
    }
    assert TABLE.literal_roots() == {"keyv", "__ui"}
    route = TABLE.at(("keyv", None))
    assert route is not None and route.template == "/keyv/{key}"


SEGMENTS = st.sampled_from(["keyv", "k", "_count", "__ui", "a.js", "events", "", "{x}", "é"])


@given(st.lists(SEGMENTS, max_size=4), st.booleans())
def test_one_pattern_finds_the_route_a_scan_of_the_templates_finds(
    segments: list[str], slash: bool
) -> None:
    """``match`` tries every template at once; the answer is the first template, in order of
    preference, that matches the whole path."""
    path = "/" + "/".join(segments) + ("/" if slash else "")
    scanned = next((route for route in TABLE.routes if route.matches(path)), None)
    assert TABLE.match(path) is scanned
    assert RouteTable.of([]).match(path) is None
