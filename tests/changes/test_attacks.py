"""The change feed under attack: a subscriber never receives a document it may not read (nor
its id, ETag or the moment it changed), through inherited values, hidden parents, filters,
by-query writes or imports; bad credentials open nothing. Both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datastore.storage.engine import Database
from datastore.transfer import import_documents
from tests.http.test_rules_hold import ADMIN, ALICE, BOB, SECRET, blueprint
from tests.support.client import CheckedClient, serve


@pytest.fixture
def app(database: Database, space: str) -> Iterator[CheckedClient]:
    with serve(database, space, blueprint(), jwt_secret=SECRET) as client:
        yield client


def head(app: CheckedClient, path: str = "/docs") -> str:
    response = app.get(f"{path}/_changes", headers=ADMIN)
    assert response.status_code == 200, response.text
    cursor: str = response.json()["next"]
    return cursor


def feed(app: CheckedClient, who: dict[str, str], since: str, path: str = "/docs", **q: Any) -> Any:
    response = app.get(f"{path}/_changes", params={"since": since, **q}, headers=who)
    assert response.status_code == 200, response.text
    return response.json()


def seen(page: Any) -> list[tuple[str, str]]:
    return [(c["event"], c["data"]["id"]) for c in page["changes"]]


def put(app: CheckedClient, path: str, who: dict[str, str], **body: Any) -> Any:
    response = app.put(path, json=body, headers=who)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_inherited_values_decide_who_sees_a_change(app: CheckedClient) -> None:
    start = head(app)
    put(app, "/docs/base", ALICE, ownerId="alice", title="base")
    created = app.post("/docs", json={"extends": "/docs/base", "title": "t"}, headers=ALICE)
    assert created.status_code == 201, created.text
    child = created.json()["id"]
    # The child's owner is inherited: alice sees it, bob does not.
    assert seen(feed(app, ALICE, start)) == [("created", "base"), ("created", child)]
    bobs = feed(app, BOB, start)
    assert bobs["changes"] == []
    assert child not in json.dumps(bobs)
    # A filter on an inherited value matches the child too.
    owned = feed(app, ALICE, start, q=json.dumps({"ownerId": "alice"}))
    assert seen(owned) == [("created", "base"), ("created", child)]
    # Made public through its ancestor, the child's next change reaches bob.
    app.patch("/docs/base", json={"public": True}, headers=ALICE)
    app.patch(f"/docs/{child}", json={"title": "u"}, headers=ALICE)
    later = feed(app, BOB, bobs["next"])
    # bob's cursor never passed the unseen creations: shown as the documents are now.
    assert seen(later) == [
        ("created", "base"), ("created", child), ("updated", "base"), ("updated", child)
    ]  # fmt: skip
    assert later["changes"][-1]["data"]["public"] is True


def test_deletions_reach_only_who_could_read_the_document(app: CheckedClient) -> None:
    put(app, "/docs/a", ALICE, ownerId="alice", title="private")
    put(app, "/docs/p", ALICE, ownerId="alice", title="shown", public=True)
    start = head(app)
    app.delete("/docs/a", headers=ALICE)
    app.delete("/docs/p", headers=ALICE)
    assert seen(feed(app, ALICE, start)) == [("deleted", "a"), ("deleted", "p")]
    bobs = feed(app, BOB, start)
    assert seen(bobs) == [("deleted", "p")]
    assert '"a"' not in json.dumps(bobs)


def test_a_deleted_document_that_inherited_its_owner_stays_unseen(app: CheckedClient) -> None:
    """Its inherited values left with its lineage: a rule reading the document cannot be
    evaluated as it was, so nobody is told (docs/changes.md, limits)."""
    put(app, "/docs/base", ALICE, ownerId="alice", title="base")
    child = app.post("/docs", json={"extends": "/docs/base"}, headers=ALICE).json()["id"]
    start = head(app)
    app.delete(f"/docs/{child}", headers=ALICE)
    assert feed(app, BOB, start)["changes"] == []
    assert feed(app, ALICE, start)["changes"] == []


def test_nothing_of_an_unseen_change_shows_in_the_cursor(app: CheckedClient) -> None:
    start = head(app)
    bob_start = feed(app, BOB, start)["next"]
    for i in range(5):
        put(app, f"/docs/s{i}", ALICE, ownerId="alice", title="secret")
    # No event, and the cursor does not move past changes bob cannot see (it would tell
    # him when they happened).
    page = feed(app, BOB, bob_start)
    assert page == {"changes": [], "next": bob_start}
    long_poll = feed(app, BOB, bob_start, wait="1")
    assert long_poll == {"changes": [], "next": bob_start}


def test_schema_defaults_count_as_a_get_shows_them(app: CheckedClient) -> None:
    start = head(app, "/drafts")
    put(app, "/drafts/d1", ALICE, ownerId="alice", title="public by default")
    put(app, "/drafts/d2", ALICE, ownerId="alice", title="hidden", public=False)
    page = feed(app, BOB, start, path="/drafts")
    assert seen(page) == [("created", "d1")]
    assert page["changes"][0]["data"]["public"] is True


def test_by_query_writes_and_imports_are_in_the_feed(
    app: CheckedClient, database: Database, space: str, tmp_path: Path
) -> None:
    put(app, "/docs/a1", ALICE, ownerId="alice", title="one")
    put(app, "/docs/b1", BOB, ownerId="bob", title="two")
    start = head(app)
    patched = app.request(
        "PATCH", "/docs/_byquery", params={"q": "{}"}, json={"$set": {"title": "x"}}, headers=ALICE
    )
    assert patched.json() == {"count": 1}
    source = tmp_path / "docs.jsonl"
    source.write_text('{"_id": "i1", "ownerId": "alice", "title": "imported"}\n')
    import_documents(database, space, "docs", source, schema=None)
    written = feed(app, ALICE, start)
    assert seen(written) == [("updated", "a1"), ("created", "i1")]
    deleted = app.request("DELETE", "/docs/_byquery", params={"q": "{}"}, headers=ALICE)
    assert deleted.json() == {"count": 2}
    assert seen(feed(app, ALICE, written["next"])) == [("deleted", "a1"), ("deleted", "i1")]
    assert feed(app, BOB, start)["changes"] == []


def test_bad_credentials_open_no_feed(app: CheckedClient) -> None:
    from tests.http.test_attacks import unsigned

    start = head(app, "/secrets")
    put(app, "/secrets/k", ADMIN, title="classified")
    for headers in (
        {},
        ALICE,
        {"Authorization": f"Bearer {unsigned({'sub': 'root', 'isAdmin': True})}"},
        {"Authorization": "Bearer garbage"},
    ):
        response = app.get("/secrets/_changes", params={"since": start}, headers=headers)
        assert response.status_code in (401, 403), response.text
        assert "classified" not in response.text
    assert seen(feed(app, ADMIN, start, path="/secrets")) == [("created", "k")]
