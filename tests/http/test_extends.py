"""Document inheritance over HTTP: live inheritance, lineage sources, cycles, detach, queries."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.http.test_documents import EVENT, problem, reasons
from tests.support.client import BLUEPRINTS, CheckedClient, serve
from tests.support.live import live_server

pytestmark = pytest.mark.citus_audit


@pytest.fixture
def events(database: Database, space: str) -> Iterator[CheckedClient]:
    with serve(database, space, "events.yaml") as client:
        yield client


def put(events: CheckedClient, doc_id: str, **body: Any) -> Any:
    response = events.put(f"/events/{doc_id}", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_child_inherits_live_values(events: CheckedClient) -> None:
    put(events, "base", **EVENT, description="Base text", cost=10, tags=["x"])
    child = put(events, "child", extends="/events/base", name="Own title", description=None)
    assert child["name"] == "Own title"
    assert child["description"] == "Base text"  # null counts as "not set"
    assert child["eventDate"] == EVENT["eventDate"]
    assert (child["cost"], child["tags"], child["extends"]) == (10, ["x"], "/events/base")
    events.patch("/events/base", json={"cost": 12})
    assert events.get("/events/child").json()["cost"] == 12
    assert (
        child["id"] == "child" and child["created"] != events.get("/events/base").json()["created"]
    )


def test_chains_and_lineage_sources(events: CheckedClient) -> None:
    put(events, "e0", **EVENT, capacity=100)
    for n in range(1, 11):
        put(events, f"e{n}", extends=f"/events/e{n - 1}")
    deepest = events.get("/events/e10").json()
    assert deepest["capacity"] == 100
    assert deepest["extendsAll"] == [f"/events/e{n}" for n in range(9, -1, -1)]
    root = events.get("/events/e0").json()
    assert root["extendedBy"] == ["/events/e1"]
    assert root["extendedByAll"] == sorted(f"/events/e{n}" for n in range(1, 11))
    assert root["extends"] in ("", None)
    put(events, "other", extends="/events/e0")
    assert events.get("/events/e0").json()["extendedBy"] == ["/events/e1", "/events/other"]


def test_reparenting_moves_the_subtree(events: CheckedClient) -> None:
    put(events, "a", **EVENT, category="music")
    put(events, "b", **EVENT, category="film")
    put(events, "mid", extends="/events/a")
    put(events, "leaf", extends="/events/mid")
    assert events.get("/events/leaf").json()["category"] == "music"
    events.patch("/events/mid", json={"extends": "/events/b"})
    leaf = events.get("/events/leaf").json()
    assert leaf["category"] == "film"
    assert leaf["extendsAll"] == ["/events/mid", "/events/b"]
    assert events.get("/events/a").json()["extendedByAll"] == []
    # Detaching would leave mid without its required fields: refused until it has its own.
    assert events.patch("/events/mid", json={"extends": None}).status_code == 400
    assert events.patch("/events/mid", json={"extends": None, **EVENT}).status_code == 200
    assert events.get("/events/leaf").json()["extendsAll"] == ["/events/mid"]


def test_missing_target_and_bad_paths(events: CheckedClient) -> None:
    response = events.put("/events/c", json={"extends": "/events/nope"})
    assert response.status_code == 400
    assert problem(response)["title"] == "Invalid extending document"
    assert reasons(response) == {"extends": "Document to extend does not exist"}
    assert events.put("/events/c", json={"extends": "events/x"}).status_code == 400
    assert events.put("/events/c", json={"extends": 5}).status_code == 400
    assert events.get("/events/c").status_code == 404


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_cycles_are_refused(events: CheckedClient, depth: int) -> None:
    put(events, "n0", **EVENT)
    for n in range(1, depth + 1):
        put(events, f"n{n}", extends=f"/events/n{n - 1}")
    response = events.patch("/events/n0", json={"extends": f"/events/n{depth}"})
    assert response.status_code == 400
    assert "cycle" in reasons(response)["extends"]
    assert events.get("/events/n0").json()["extends"] in ("", None)
    if depth == 0:
        assert events.put("/events/self", json={"extends": "/events/self"}).status_code == 400


def test_delete_with_children_needs_detach(events: CheckedClient) -> None:
    put(events, "base", **EVENT, cost=3)
    put(events, "c1", extends="/events/base")
    put(events, "c2", extends="/events/base")
    refused = events.delete("/events/base")
    assert refused.status_code == 409
    assert refused.json()["extendedBy"] == ["/events/c1", "/events/c2"]
    assert events.get("/events/base").status_code == 200
    assert events.delete("/events/base", params={"detach": "true"}).status_code == 204
    child = events.get("/events/c1").json()
    assert child["extends"] in ("", None)
    assert (child["cost"], child["name"]) == (3, "Gig")  # what it showed is now its own


def test_queries_see_inherited_values(events: CheckedClient) -> None:
    put(events, "base", **EVENT, category="music", cost=50)
    put(events, "child", name="Child", extends="/events/base")
    put(events, "plain", **EVENT, category="film", cost=5)
    names = lambda **p: [d["name"] for d in events.get("/events", params=p).json()]  # noqa: E731
    assert names(filters="document.category===music") == ["Gig", "Child"]
    assert names(q='{"cost": {"$gte": 50}}') == ["Gig", "Child"]
    assert names(sort="-document.cost") == ["Gig", "Child", "Gig"]
    assert names(sort="+document.cost") == ["Gig", "Gig", "Child"]


def test_the_multi_collection_read_shows_inherited_values(events: CheckedClient) -> None:
    """``POST /__resources/collections`` shows each document as its GET does: with the
    values it inherits and its lineage (it showed only its own values)."""
    put(events, "base", **EVENT, category="music", cost=50)
    put(events, "child", name="Child", extends="/events/base")
    body = {"collections": ["/events"], "filters": "document.category===music"}
    read = events.post("/__resources/collections", json=body)
    assert read.status_code == 200, read.text
    data = read.json()["data"]
    assert [d["name"] for d in data] == ["Gig", "Child"]
    assert data[1] | {"$collection": None} == events.get("/events/child").json() | {
        "$collection": None
    }
    assert data[0]["extendedBy"] == ["/events/child"]


def test_concurrent_reparenting_never_makes_a_cycle(database: Database, space: str) -> None:
    if not database.is_postgresql:
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    app = create_app(
        Settings(migrate=False),
        [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
        database=database,
    )
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        for name in ("a", "b"):
            client.put(f"/events/{name}", json=EVENT)

        def link(pair: tuple[str, str]) -> int:
            with httpx.Client(base_url=url, timeout=30) as own:
                return own.patch(
                    f"/events/{pair[0]}", json={"extends": f"/events/{pair[1]}"}
                ).status_code

        for _ in range(5):
            with ThreadPoolExecutor(max_workers=2) as pool:
                codes = sorted(pool.map(link, [("a", "b"), ("b", "a")]))
            assert codes == [200, 400]
            a = client.get("/events/a").json()
            b = client.get("/events/b").json()
            assert not (a["extends"] == "/events/b" and b["extends"] == "/events/a")
            client.patch("/events/a", json={"extends": None})
            client.patch("/events/b", json={"extends": None})
