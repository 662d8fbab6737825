"""The Python client against the live app, on both backends, for every method."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from datastore import client as dsclient
from datastore.app import create_app, serve_blueprint_file
from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import mint_token
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS

EVENT = {"name": "Gig", "eventDate": "2026-12-01T20:00:00Z"}
SECRET = "client-test-secret-client-test-secret"


@pytest.fixture
def events(database: Database, space: str) -> Iterator[dsclient.Client]:
    app = create_app(
        Settings(migrate=False),
        [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
        database=database,
    )
    with TestClient(app) as http:
        yield dsclient.Client("", http=http)


def test_documents(events: dsclient.Client) -> None:
    coll = events.collection("events")
    created = coll.add({**EVENT, "cost": 3})
    doc = coll.doc(created["id"])
    assert doc.get()["cost"] == 3 and doc.etag == '"1"'
    assert doc.update({"cost": 4})["cost"] == 4
    with pytest.raises(dsclient.PreconditionFailed):
        doc.update({"cost": 5}, if_match='"1"')
    assert doc.set({**EVENT, "name": "Renamed"}, if_match=doc.etag)["name"] == "Renamed"
    with pytest.raises(dsclient.PreconditionFailed):
        doc.set(EVENT, create_only=True)
    comments = doc.collection("comments")
    comments.add({"author": "a", "text": "hi"})
    assert [c["text"] for c in comments.get()] == ["hi"]
    doc.delete()
    with pytest.raises(dsclient.NotFound) as missing:
        doc.get()
    assert missing.value.title == "Document not found"


def test_validation_errors_carry_invalid_params(events: dsclient.Client) -> None:
    with pytest.raises(dsclient.BadRequest) as caught:
        events.collection("events").add({"name": ""})
    assert {p["name"] for p in caught.value.invalid_params} == {"name", "eventDate"}


def test_queries_and_paging_to_the_end(events: dsclient.Client) -> None:
    coll = events.collection("events")
    for n in range(25):
        coll.doc(f"e{n:02}").set({**EVENT, "name": f"n{n:02}", "cost": n % 5})
    assert [d["name"] for d in coll.get(filters="document.cost===4")] == [
        "n04",
        "n09",
        "n14",
        "n19",
        "n24",
    ]
    assert len(coll.query({"cost": {"$lt": 2}}, {"limit": 3})) == 3
    first = coll.page(10, sort="-document.name")
    assert first.has_next() and not first.has_prev()
    second = first.next()
    assert second is not None and second.has_prev()
    back = second.prev()
    assert back is not None and [d["name"] for d in back.data] == [d["name"] for d in first.data]
    everything = [d["name"] for d in coll.all(page_size=7, sort="+document.name")]
    assert everything == [f"n{n:02}" for n in range(25)]


@pytest.fixture
def codehooks(database: Database, space: str) -> Iterator[dsclient.Client]:
    _, key = ApiKeyStore(database).add(space, readonly=False)
    app = create_app(
        Settings(migrate=False),
        [serve_blueprint_file(BLUEPRINTS / "codehooks.yaml", space)],
        database=database,
    )
    with TestClient(app) as http:
        yield dsclient.Client("", http=http, api_key=key)


def test_counts_by_query_kv_and_queues(codehooks: dsclient.Client) -> None:
    pets = codehooks.collection("pets")
    for name, kind in (("Polly", "Bird"), ("Rex", "Dog"), ("Pip", "Dog")):
        pets.add({"name": name, "type": kind})
    assert pets.count({"type": "Dog"}) == 2
    assert pets.update_by_query({"type": "Dog"}, {"$set": {"good": True}}) == 2
    assert pets.delete_by_query({"type": "Bird"}) == 1
    assert pets.count() == 2
    kv = codehooks.kv
    kv.set("greeting", "hello", ttl_ms=60_000)
    assert kv.get("greeting") == "hello"
    assert kv.incr("hits") == 1 and kv.incr("hits", 4) == 5 and kv.decr("hits", 2) == 3
    assert [e["key"] for e in kv.list("gre")] == ["greeting"]
    kv.delete("greeting")
    with pytest.raises(dsclient.NotFound):
        kv.get("greeting")
    job = codehooks.queue("emails").enqueue({"to": "a@example.com"})
    assert codehooks.queue("emails").status(job)["status"] == "queued"


def test_auth_errors(database: Database, space: str) -> None:
    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET),
        [serve_blueprint_file(BLUEPRINTS / "multi-user.yaml", space)],
        database=database,
    )
    with TestClient(app) as http:
        anonymous = dsclient.Client("", http=http)
        with pytest.raises(dsclient.Unauthorized):
            anonymous.collection("posts").add({"ownerId": "u1", "title": "t"})
    with TestClient(app) as http:
        u1 = dsclient.Client("", http=http, token=mint_token({"sub": "u1"}, secret=SECRET))
        with pytest.raises(dsclient.Forbidden):
            u1.collection("posts").add({"ownerId": "u2", "title": "t"})
        assert u1.collection("posts").add({"ownerId": "u1", "title": "t"})["ownerId"] == "u1"


def test_a_document_read_can_be_written_back(events: dsclient.Client) -> None:
    """Get, change one field, set: the source properties GET shows are accepted back when
    they are the document's own (issue 23)."""
    coll = events.collection("events")
    base = coll.add({**EVENT, "cost": 1})
    child = coll.doc("child")
    child.set({"extends": f"/events/{base['id']}"})
    for doc in (coll.doc(base["id"]), child):
        shown = doc.get()
        assert {"id", "created", "updated", "extendsAll", "extendedBy"} <= set(shown)
        replaced = doc.set({**shown, "name": "Renamed"}, if_match=doc.etag)
        assert replaced["name"] == "Renamed" and replaced["created"] == shown["created"]
        assert doc.update({**doc.get(), "cost": 7})["cost"] == 7
    with pytest.raises(dsclient.BadRequest) as refused:
        child.set({**child.get(), "created": "2000-01-01T00:00:00.000000Z"})
    assert refused.value.body["invalid-params"] == [
        {"name": "created", "reason": "is read-only: the datastore sets it"}
    ]
    with pytest.raises(dsclient.BadRequest):
        child.update({"extendsAll": ["/events/elsewhere"]})
    with pytest.raises(dsclient.BadRequest):  # a new document has no creation time yet
        coll.add({**EVENT, "created": child.get()["created"]})
    with pytest.raises(dsclient.BadRequest):
        coll.doc("new").set({**EVENT, "created": child.get()["created"]})


def test_changes_follow_a_collection(events: dsclient.Client) -> None:
    feed = events.collection("events").changes(wait=0, follow=False)
    assert list(feed) == []
    start = feed.cursor
    assert start is not None
    added = events.collection("events").add({"name": "Gig", "eventDate": "2026-12-01T20:00:00Z"})
    events.collection("events").doc(added["id"]).update({"cost": 5})
    later = events.collection("events").changes(since=start, wait=0, follow=False)
    seen = [(c["event"], c["data"]["id"]) for c in later]
    assert seen == [("created", added["id"]), ("updated", added["id"])]
    assert later.cursor is not None and int(later.cursor) > int(start)
    with pytest.raises(dsclient.Gone):
        list(events.collection("events").changes(since="99999999", wait=0, follow=False))
