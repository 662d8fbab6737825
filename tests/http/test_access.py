"""Access control over HTTP: 401/403/404, rules on documents and parents, listing filters,
API keys, and the dev token endpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import mint_token
from datastore.storage.engine import Database
from tests.http.test_documents import problem
from tests.support.client import CheckedClient, serve

pytestmark = pytest.mark.citus_audit

SECRET = "multi-user-test-secret-0123456789"


def auth(sub: str | None = None, **claims: Any) -> dict[str, str]:
    if sub is not None:
        claims["sub"] = sub
    return {"Authorization": f"Bearer {mint_token(claims, secret=SECRET)}"}


@pytest.fixture
def app(database: Database, space: str) -> Iterator[CheckedClient]:
    with serve(database, space, "multi-user.yaml", jwt_secret=SECRET) as client:
        yield client


def post(app: CheckedClient, owner: str, title: str, **extra: Any) -> Any:
    body = {"ownerId": owner, "title": title, **extra}
    return app.post("/posts", json=body, headers=auth(owner))


def test_no_credential_is_401(app: CheckedClient) -> None:
    response = app.post("/posts", json={"ownerId": "u1", "title": "t"})
    assert response.status_code == 401
    assert problem(response)["title"] == "Unauthorized"
    assert app.get("/posts/x").status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + jwt.encode({"sub": "u1", "exp": int(time.time()) - 3600}, SECRET, "HS256"),
        "Bearer "
        + jwt.encode(
            {"sub": "u1", "exp": int(time.time()) + 3600}, "some-other-secret-0123456789abcd"
        ),
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.",
        "Bearer garbage",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
def test_bad_tokens_are_401(app: CheckedClient, header: str) -> None:
    response = app.post(
        "/posts", json={"ownerId": "u1", "title": "t"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert app.get("/posts", headers={"Authorization": header}).status_code == 401


def test_a_token_without_exp_is_401_unless_the_server_allows_it(
    database: Database, space: str
) -> None:
    """A token without exp was good forever: refused by default (issue 15)."""
    forever = {"Authorization": "Bearer " + jwt.encode({"sub": "u1"}, SECRET, "HS256")}
    body = {"ownerId": "u1", "title": "t"}
    with serve(database, space, "multi-user.yaml", jwt_secret=SECRET) as client:
        response = client.post("/posts", json=body, headers=forever)
        assert response.status_code == 401
        assert problem(response)["detail"] == "The token has no expiry (exp)."
        assert client.post("/posts", json=body, headers=auth("u1")).status_code == 201
    with serve(
        database, space, "multi-user.yaml", jwt_secret=SECRET, jwt_allow_no_exp=True
    ) as client:
        assert client.post("/posts", json=body, headers=forever).status_code == 201
        expired = jwt.encode({"sub": "u1", "exp": int(time.time()) - 3600}, SECRET, "HS256")
        refused = client.post("/posts", json=body, headers={"Authorization": f"Bearer {expired}"})
        assert problem(refused)["detail"] == "The token has expired."


def test_rule_false_is_403(app: CheckedClient) -> None:
    response = app.post("/posts", json={"ownerId": "u2", "title": "t"}, headers=auth("u1"))
    assert response.status_code == 403
    assert problem(response) == {"title": "Forbidden", "status": "403"}
    assert post(app, "u1", "mine").status_code == 201


def test_unreadable_document_is_404_not_403(app: CheckedClient) -> None:
    draft = post(app, "u1", "draft").json()
    assert app.get(f"/posts/{draft['id']}", headers=auth("u2")).status_code == 404
    assert problem(app.get("/posts/missing", headers=auth("u2")))["title"] == "Document not found"
    assert app.get(f"/posts/{draft['id']}", headers=auth("u1")).status_code == 200
    assert app.get(f"/posts/{draft['id']}", headers=auth("x", isAdmin=True)).status_code == 200


def test_owner_rule_with_status(app: CheckedClient) -> None:
    created = post(app, "u1", "t").json()
    url = f"/posts/{created['id']}"
    # u2 cannot read u1's draft, so a refused write does not reveal it exists either.
    assert app.patch(url, json={"title": "new"}, headers=auth("u2")).status_code == 404
    assert app.patch(url, json={"published": True}, headers=auth("u1")).status_code == 200
    assert app.patch(url, json={"title": "new"}, headers=auth("u2")).status_code == 403
    assert app.patch(url, json={"status": "archived"}, headers=auth("u1")).status_code == 403
    assert app.patch(url, json={"title": "new"}, headers=auth("u1")).status_code == 200
    # PATCH must hold for the result too: the owner cannot hand the post to someone else.
    assert app.patch(url, json={"ownerId": "u2"}, headers=auth("u1")).status_code == 403
    assert app.get(url, headers=auth("u1")).json()["title"] == "new"
    assert app.delete(url, headers=auth("u2")).status_code == 403
    assert app.delete(url, headers=auth("u1")).status_code == 204


def test_listing_is_filtered_in_sql_with_exact_paging(app: CheckedClient) -> None:
    for n in range(50):
        post(app, "u1", f"p{n:02}", published=n % 2 == 0)
    everyone = app.get("/posts", params={"limit": 100}).json()
    assert [p["title"] for p in everyone] == [f"p{n:02}" for n in range(0, 50, 2)]
    pages = [app.get("/posts", params={"limit": 10, "offset": o}).json() for o in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert all(p["published"] for page in pages for p in page)
    mine = app.get("/posts", params={"limit": 100}, headers=auth("u1")).json()
    assert len(mine) == 50


def test_nested_parent_rules(app: CheckedClient) -> None:
    assert app.put("/users/u1", json={"displayName": "U1"}, headers=auth("u1")).status_code == 201
    assert app.put("/users/u2", json={"displayName": "U2"}, headers=auth("u1")).status_code == 403
    app.put("/users/u2", json={"displayName": "U2"}, headers=auth("u2"))
    note = app.post("/users/u1/notes", json={"text": "secret"}, headers=auth("u1"))
    assert note.status_code == 201
    shared = app.post("/users/u1/notes", json={"text": "open", "shared": True}, headers=auth("u1"))
    # u2 may not read /users/u1: refused as if it did not exist, like /users/nobody.
    for path in ("/users/u1/notes", "/users/nobody/notes"):
        refused = app.post(path, json={"text": "x"}, headers=auth("u2"))
        assert (refused.status_code, problem(refused)["title"]) == (404, "Collection not found")
        listed = app.get(path, headers=auth("u2"))
        assert (listed.status_code, problem(listed)["title"]) == (404, "Collection not found")
    assert len(app.get("/users/u1/notes", headers=auth("u1")).json()) == 2
    for path in (note.headers["location"], "/users/u1/notes/missing", "/users/nobody/notes/x"):
        hidden = app.get(path, headers=auth("u2"))
        assert (hidden.status_code, problem(hidden)["title"]) == (404, "Collection not found")
    assert app.get(shared.headers["location"], headers=auth("u2")).status_code == 200
    assert app.post("/users/u9/notes", json={"text": "x"}, headers=auth("u9")).status_code == 404
    assert app.get("/users", headers=auth("u1")).status_code == 403
    assert len(app.get("/users", headers=auth("a", isAdmin=True)).json()) == 2


@pytest.fixture
def codehooks_keys(database: Database, space: str) -> Iterator[tuple[CheckedClient, str, str]]:
    store = ApiKeyStore(database)
    _, readwrite = store.add(space, readonly=False)
    _, readonly = store.add(space, readonly=True)
    with serve(database, space, "codehooks.yaml") as client:
        yield client, readwrite, readonly


def test_codehooks_needs_an_api_key(codehooks_keys: tuple[CheckedClient, str, str]) -> None:
    client, readwrite, readonly = codehooks_keys
    assert client.get("/pets").status_code == 401
    assert client.get("/pets", headers={"x-apikey": "dsk_nope_nope"}).status_code == 401
    rw, ro = {"x-apikey": readwrite}, {"x-apikey": readonly}
    created = client.post("/pets", json={"name": "Polly"}, headers=rw)
    assert created.status_code == 201
    assert client.get("/pets", headers=ro).status_code == 200
    denied = client.post("/pets", json={"name": "Rex"}, headers=ro)
    assert denied.status_code == 403
    assert client.delete(f"/pets/{created.json()['_id']}", headers=ro).status_code == 403
    assert client.put("/keyv/k", json="v", headers=ro).status_code == 403


def test_api_key_of_another_space(database: Database, space: str) -> None:
    _, other = ApiKeyStore(database).add(space + "other", readonly=False)
    with serve(database, space, "codehooks.yaml") as client:
        assert client.get("/pets", headers={"x-apikey": other}).status_code == 401


def test_dev_token_endpoint(database: Database, space: str) -> None:
    with serve(database, space, "multi-user.yaml", dev=True) as client:
        minted = client.post("/__jwt", json={"sub": "u1"})
        assert minted.status_code == 200
        token = minted.json()["token"]
        created = client.post(
            "/posts",
            json={"ownerId": "u1", "title": "t"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201
        assert client.post("/__jwt", json=[1]).status_code == 400
    with serve(database, space, "multi-user.yaml", jwt_secret=SECRET) as client:
        assert client.post("/__jwt", json={"sub": "u1"}).status_code == 404
