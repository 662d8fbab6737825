"""The Codehooks seed, served unchanged: dynamic collections, _id, status codes as declared."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from datastore.auth.apikeys import ApiKeyStore
from datastore.storage.engine import Database
from tests.http.test_documents import problem
from tests.http.test_querying import Keyed
from tests.support.client import serve

pytestmark = [pytest.mark.pgbouncer, pytest.mark.citus_audit]


@pytest.fixture
def api(database: Database, space: str) -> Iterator[Keyed]:
    _, key = ApiKeyStore(database).add(space, readonly=False)
    with serve(database, space, "codehooks.yaml") as client:
        yield Keyed(client, key)


def test_document_lifecycle(api: Keyed) -> None:
    created = api.post("/customers", json={"name": "Ann", "_id": "c1"})
    assert created.status_code == 201
    assert created.json() == {"_id": "c1", "name": "Ann"}
    assert created.headers["location"] == "/customers/c1"
    generated = api.post("/customers", json={"name": "Bob"}).json()
    assert isinstance(generated["_id"], str) and generated["_id"]
    assert api.get("/customers/c1").json() == {"_id": "c1", "name": "Ann"}
    replaced = api.put("/customers/c1", json={"name": "Ann B", "_id": "ignored"})
    assert (replaced.status_code, replaced.json()) == (200, {"_id": "c1", "name": "Ann B"})
    patched = api.patch("/customers/c1", json={"vip": True})
    assert patched.json() == {"_id": "c1", "name": "Ann B", "vip": True}
    deleted = api.delete("/customers/c1")
    assert (deleted.status_code, deleted.json()) == (200, {"_id": "c1"})
    assert api.get("/customers/c1").status_code == 404
    assert api.delete("/customers/c1").status_code == 404
    assert api.patch("/customers/c1", json={"a": 1}).status_code == 404


def test_put_replaces_and_never_creates(api: Keyed) -> None:
    # The seed: PUT replaces (404 Document not found for a missing id), POST creates.
    missing = api.put("/things/t1", json={"a": 1})
    assert (missing.status_code, problem(missing)["title"]) == (404, "Document not found")
    assert api.get("/things").status_code == 404  # nothing was written
    api.post("/things", json={"_id": "t0"})
    missing = api.put("/things/t1", json={"a": 1}, headers={"If-None-Match": "*"})
    assert (missing.status_code, problem(missing)) == (404, problem(api.get("/things/t1")))
    assert [d["_id"] for d in api.get("/things").json()] == ["t0"]
    replaced = api.put("/things/t0", json={"a": 2})
    assert (replaced.status_code, replaced.json()) == (200, {"_id": "t0", "a": 2})


def test_collections_are_separate_and_listed(api: Keyed) -> None:
    api.post("/a", json={"n": 1})
    api.post("/b", json={"n": 2})
    assert [d["n"] for d in api.get("/a").json()] == [1]
    assert api.get("/a", params={"q": '{"n": 5}'}).json() == []  # exists, nothing matches


def test_a_collection_exists_while_it_holds_a_document(api: Keyed) -> None:
    # The seed: listing a collection that does not exist is 404 Collection not found.
    for read in ("/empty", "/empty/_count", "/empty?count=true"):
        absent = api.get(read)
        assert (absent.status_code, problem(absent)["title"]) == (404, "Collection not found")
        assert "No collection 'empty' exists" in problem(absent)["detail"]
    for method in ("PATCH", "DELETE"):
        body = {"json": {"$set": {"a": 1}}} if method == "PATCH" else {}
        by_query = getattr(api, method.lower())("/empty/_byquery?q={}", **body)
        assert (by_query.status_code, problem(by_query)["title"]) == (404, "Collection not found")
    api.post("/empty", json={"_id": "e1"})
    assert api.get("/empty/_count").json() == {"count": 1}
    matched_none = api.patch("/empty/_byquery", params={"q": '{"x": 1}'}, json={"$set": {"y": 1}})
    assert matched_none.json() == {"count": 0}
    # Deleting its last document deletes the collection (on every server: it is the data).
    api.delete("/empty/e1")
    assert api.get("/empty").status_code == 404


def test_a_codehooks_space_in_the_path_gets_a_hint(api: Keyed) -> None:
    api.post("/customers", json={"_id": "c1"})
    wrong = api.get("/dev/customers")  # Codehooks: /{space}/{collection}
    assert (wrong.status_code, problem(wrong)["title"]) == (404, "Document not found")
    assert (
        "if 'dev' is one, this server is not addressed by space: request /customers"
        in (problem(wrong)["detail"])
    )
    # A missing document of a collection that exists says nothing more.
    assert "detail" not in problem(api.get("/customers/nope"))


@pytest.mark.parametrize("name", ["_private", ".hidden", "a b", "x" * 200])
def test_bad_collection_names(api: Keyed, name: str) -> None:
    assert api.post(f"/{name}", json={}).status_code in (400, 404)


def test_duplicate_id_is_409(api: Keyed) -> None:
    assert api.post("/c", json={"_id": "x"}).status_code == 201
    assert api.post("/c", json={"_id": "x"}).status_code == 409


def test_queue_and_keyv_from_the_seed(api: Keyed) -> None:
    job = api.post("/queue/emails", json={"to": "a@example.com"})
    assert job.status_code == 201
    body = job.json()
    assert body["topic"] == "emails"
    status = api.get(f"/queue/emails/{body['_id']}")
    assert status.json()["status"] == "queued"
    assert api.get("/queue/emails/nope").status_code == 404
    assert api.put("/keyv/greeting", json="hello").status_code == 200
    assert api.get("/keyv/greeting").json() == "hello"
    assert api.put("/keyv/n", json=5).status_code == 400  # the seed declares string or object
    assert api.put("/keyv/hits/_incr", json={"value": 2}).json() == {"value": 2}


def test_methods_a_literal_path_lacks_are_405_not_a_dynamic_collection(api: Keyed) -> None:
    # Found by schemathesis: connexion hands PATCH /keyv/k to /{collection}/{id} (the seed's
    # /keyv/{key} has no PATCH), so it patched a document of a collection named "keyv", and
    # PUT /c/_count created a document "_count" that GET /c/_count could never read.
    patched = api.patch("/keyv/k", json={"a": 1})
    assert patched.status_code == 405
    assert patched.headers["allow"] == "DELETE, GET, PUT"
    assert api.post("/keyv", json={"a": 1}).headers["allow"] == "GET"
    counted = api.put("/things/_count", json={"a": 1})
    assert (counted.status_code, counted.headers["allow"]) == (405, "GET")
    assert api.get("/things/_byquery").headers["allow"] == "DELETE, PATCH"
    assert api.get("/things/_count").status_code == 404  # nothing was written: no collection
    assert api.get("/keyv").json() == []
    options = api.client.request("OPTIONS", "/things/_count", headers=api.headers)
    assert (options.status_code, options.headers["allow"]) == (405, "GET")


def test_patch_fields_and_operators_do_not_mix(api: Keyed) -> None:
    api.post("/things", json={"_id": "t1", "a": 1})
    assert api.patch("/things/t1", json={"": 1, "+0.0": {"n": 1}}).status_code == 200
    mixed = api.patch("/things/t1", json={"b": 2, "$set": {"c": 3}})
    assert mixed.status_code == 400
    assert api.get("/things/t1").json() == {"_id": "t1", "a": 1, "": 1, "+0.0": {"n": 1}}


def test_a_dynamic_collection_may_not_take_a_literal_root_name(api: Keyed) -> None:
    # POST /queue created documents in a collection "queue" that /queue/{id} could never read.
    # /queue is the queue listing now (GET only, docs/queues.md): no collection takes it.
    created = api.post("/queue", json={"a": 1})
    assert created.status_code == 405 and created.headers["allow"] == "GET"
    assert api.get("/queue").json() == []  # the topics holding jobs, for this API key
    assert api.put("/queue/_count").headers["allow"] == "GET, POST"  # /queue/{topic} routes it
    assert api.post("/queues", json={"a": 1}).status_code == 201  # other names are fine
