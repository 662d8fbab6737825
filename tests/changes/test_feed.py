"""``GET <collection>/_changes`` as JSON: cursors, filters, long polling, retention, and the
access rules (what a subscriber may see, and what a refused one learns)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from datastore.auth.credentials import mint_token
from datastore.storage.engine import Database
from tests.support.client import CheckedClient, serve

SECRET = "changes-test-secret-0123456789abcdef"
USER = {"displayName": "One"}


def auth(sub: str, **claims: Any) -> dict[str, str]:
    claims = {"sub": sub, "exp": int(time.time()) + 600, **claims}
    return {"Authorization": f"Bearer {mint_token(claims, secret=SECRET)}"}


@pytest.fixture
def app(database: Database, space: str) -> Iterator[CheckedClient]:
    with serve(database, space, "multi-user.yaml", jwt_secret=SECRET) as client:
        yield client


def post(app: CheckedClient, owner: str, title: str, **extra: Any) -> Any:
    body = {"ownerId": owner, "title": title, **extra}
    response = app.post("/posts", json=body, headers=auth(owner))
    assert response.status_code == 201, response.text
    return response.json()


def changes(app: CheckedClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = app.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_fresh_feed_starts_at_the_head(app: CheckedClient) -> None:
    post(app, "u1", "before", published=True)
    first = changes(app, "/posts/_changes", auth("u1"))
    assert first["changes"] == []
    created = post(app, "u1", "after", published=True)
    page = changes(app, "/posts/_changes", auth("u1"), since=first["next"])
    assert [(c["event"], c["data"]["id"]) for c in page["changes"]] == [("created", created["id"])]
    assert (
        page["changes"][0]["data"] == app.get(f"/posts/{created['id']}", headers=auth("u1")).json()
    )
    assert page["next"] == page["changes"][0]["id"]
    again = changes(app, "/posts/_changes", auth("u1"), since=page["next"])
    assert again["changes"] == []


def test_updates_and_deletes_follow_in_order(app: CheckedClient) -> None:
    start = changes(app, "/posts/_changes", auth("u1"))["next"]
    doc = post(app, "u1", "a", published=True)
    app.patch(f"/posts/{doc['id']}", json={"title": "b"}, headers=auth("u1"))
    app.delete(f"/posts/{doc['id']}", headers=auth("u1"))
    page = changes(app, "/posts/_changes", auth("u1"), since=start)
    # The creation and update concern a document that is gone: only its deletion is shown.
    assert [(c["event"], c["data"]) for c in page["changes"]] == [("deleted", {"id": doc["id"]})]


def test_a_subscriber_sees_only_what_its_get_rule_admits(app: CheckedClient) -> None:
    start = changes(app, "/posts/_changes", auth("u2"))["next"]
    secret = post(app, "u1", "draft")
    public = post(app, "u1", "news", published=True)
    seen_by_u2 = changes(app, "/posts/_changes", auth("u2"), since=start)
    assert [c["data"]["id"] for c in seen_by_u2["changes"]] == [public["id"]]
    seen_by_owner = changes(app, "/posts/_changes", auth("u1"), since=start)
    assert [c["data"]["id"] for c in seen_by_owner["changes"]] == [secret["id"], public["id"]]
    # Unpublishing hides the document again; its update is not shown to u2.
    app.patch(f"/posts/{public['id']}", json={"published": False}, headers=auth("u1"))
    after = changes(app, "/posts/_changes", auth("u2"), since=seen_by_u2["next"])
    assert after["changes"] == []
    # Nor is the deletion of a document u2 could not read, nor its id anywhere.
    app.delete(f"/posts/{secret['id']}", headers=auth("u1"))
    later = changes(app, "/posts/_changes", auth("u2"), since=seen_by_u2["next"])
    assert later["changes"] == [] and later["next"] == seen_by_u2["next"]
    assert secret["id"] not in str(later)


def test_filters_narrow_the_feed(app: CheckedClient) -> None:
    start = changes(app, "/posts/_changes", auth("u1"))["next"]
    post(app, "u1", "one", published=True)
    two = post(app, "u1", "two", published=True)
    page = changes(app, "/posts/_changes", auth("u1"), since=start, q='{"title": "two"}')
    assert [c["data"]["id"] for c in page["changes"]] == [two["id"]]
    squiz = changes(
        app, "/posts/_changes", auth("u1"), since=start, filters="document.title==='two'"
    )
    assert [c["data"]["id"] for c in squiz["changes"]] == [two["id"]]


def test_limit_pages_through_the_changes(app: CheckedClient) -> None:
    start = changes(app, "/posts/_changes", auth("u1"))["next"]
    ids = [post(app, "u1", f"p{i}", published=True)["id"] for i in range(5)]
    seen: list[str] = []
    cursor = start
    for _ in range(5):
        page = changes(app, "/posts/_changes", auth("u1"), since=cursor, limit=2)
        seen += [c["data"]["id"] for c in page["changes"]]
        cursor = page["next"]
    assert seen == ids


def test_the_collection_rule_is_checked_when_the_feed_opens(app: CheckedClient) -> None:
    assert app.get("/users/_changes", headers=auth("u1")).status_code == 403
    assert app.get("/users/_changes", headers=auth("u1", isAdmin=True)).status_code == 200
    assert app.get("/posts/_changes").status_code == 200  # the listing is public


def test_a_hidden_parent_answers_as_a_missing_collection(app: CheckedClient) -> None:
    admin = auth("admin", isAdmin=True)
    created = app.put("/users/u1", json=USER, headers=admin)
    assert created.status_code in (200, 201), created.text
    own = app.get("/users/u1/notes/_changes", headers=auth("u1"))
    assert own.status_code == 200
    other = app.get("/users/u1/notes/_changes", headers=auth("u2"))
    missing = app.get("/users/u9/notes/_changes", headers=auth("u2"))
    assert other.status_code == missing.status_code == 404
    assert other.json() == {
        **missing.json(),
        "detail": missing.json()["detail"].replace("u9", "u1"),
    }


def test_the_feed_of_a_missing_parent_is_404_as_its_listing(app: CheckedClient) -> None:
    admin = auth("admin", isAdmin=True)
    app.put("/users/u1", json=USER, headers=admin)
    assert app.get("/users/u1/notes/_changes", headers=admin).status_code == 200
    app.delete("/users/u1", headers=admin)
    gone = app.get("/users/u1/notes/_changes", headers=admin)
    listing = app.get("/users/u1/notes", headers=admin)
    assert gone.status_code == listing.status_code == 404
    assert gone.json() == listing.json()


def test_bad_cursors_and_parameters_are_400(app: CheckedClient) -> None:
    for params in ({"since": "x"}, {"since": "-1"}, {"wait": "99999"}, {"limit": "0"}):
        response = app.get("/posts/_changes", params=params, headers=auth("u1"))
        assert response.status_code == 400, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    bad = app.get("/posts/_changes", headers={**auth("u1"), "Last-Event-ID": "1e3"})
    assert bad.status_code == 400


def test_a_cursor_from_the_future_is_410(app: CheckedClient) -> None:
    response = app.get("/posts/_changes", params={"since": "999999999"}, headers=auth("u1"))
    assert response.status_code == 410
    assert response.headers["content-type"] == "application/problem+json"


def test_long_polling_returns_at_the_first_change(database: Database, space: str) -> None:
    import threading

    with serve(database, space, "multi-user.yaml", jwt_secret=SECRET) as app:
        start = changes(app, "/posts/_changes", auth("u1"))["next"]

        def write() -> None:
            time.sleep(0.5)
            post(app, "u1", "late", published=True)

        writer = threading.Thread(target=write)
        writer.start()
        began = time.monotonic()
        page = changes(app, "/posts/_changes", auth("u1"), since=start, wait=10)
        writer.join()
        assert [c["data"]["title"] for c in page["changes"]] == ["late"]
        assert time.monotonic() - began < 5


def test_a_cursor_older_than_retention_is_410(database: Database, space: str) -> None:
    with serve(
        database, space, "multi-user.yaml", jwt_secret=SECRET, changes_retention_count=2
    ) as app:
        start = changes(app, "/posts/_changes", auth("u1"))["next"]
        for i in range(4):
            post(app, "u1", f"p{i}", published=True)
        app.client.app  # noqa: B018 - the app is reached through the client
        from datastore.changes.service import ChangeService
        from datastore.config import Settings

        ChangeService(database, Settings(changes_retention_count=2)).prune(spaces=[space])
        response = app.get("/posts/_changes", params={"since": start}, headers=auth("u1"))
        assert response.status_code == 410
        assert response.json()["title"] == "Cursor expired"
        recent = changes(app, "/posts/_changes", auth("u1"), since=int(start) + 2)
        assert [c["data"]["title"] for c in recent["changes"]] == ["p2", "p3"]


def test_a_rule_reading_the_parent_decides_each_change(app: CheckedClient) -> None:
    """The notes' GET rule reads the parent (``parent.$id === jwt.sub || document.shared``):
    an admin may open u1's notes feed, but sees only the shared notes."""
    admin = auth("admin", isAdmin=True)
    app.put("/users/u1", json=USER, headers=admin)
    start = changes(app, "/users/u1/notes/_changes", admin)["next"]
    private = app.post("/users/u1/notes", json={"text": "mine"}, headers=auth("u1"))
    shared = app.post("/users/u1/notes", json={"text": "ours", "shared": True}, headers=auth("u1"))
    assert private.status_code == shared.status_code == 201
    seen_by_admin = changes(app, "/users/u1/notes/_changes", admin, since=start)
    assert [c["data"]["text"] for c in seen_by_admin["changes"]] == ["ours"]
    seen_by_owner = changes(app, "/users/u1/notes/_changes", auth("u1"), since=start)
    assert [c["data"]["text"] for c in seen_by_owner["changes"]] == ["mine", "ours"]
