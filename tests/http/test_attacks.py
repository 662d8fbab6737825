"""Access control under attack: every protected operation of the multi-user blueprint, tried
with each bad credential. None may succeed, none may change the victim's data, and none may
tell a forbidden document from a missing one."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import mint_token
from datastore.storage.engine import Database
from tests.support.client import CheckedClient, serve

SECRET = "attack-test-secret-0123456789abcdef"
VICTIM = "u1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def attacks(readonly_key: str, foreign_key: str) -> dict[str, dict[str, str]]:
    """Each bad credential; all but "another user" claim to be the victim."""
    return {
        "no credential": {},
        "expired token": bearer(
            jwt.encode({"sub": VICTIM, "exp": int(time.time()) - 3600}, SECRET, "HS256")
        ),
        "token signed by another key": bearer(
            jwt.encode(
                {"sub": VICTIM, "exp": int(time.time()) + 3600},
                "another-secret-0123456789abcdefgh",
                "HS256",
            )
        ),
        "alg none": bearer(unsigned({"sub": VICTIM, "isAdmin": True})),
        "token of another user": bearer(mint_token({"sub": "u2"}, secret=SECRET)),
        "read-only API key": {"x-apikey": readonly_key},
        "key of another space": {"x-apikey": foreign_key},
    }


@pytest.fixture
def victim(database: Database, space: str) -> Iterator[tuple[CheckedClient, dict[str, str]]]:
    keys = ApiKeyStore(database)
    _, readonly = keys.add(space, readonly=True)
    _, foreign = keys.add(space + "x", readonly=False)
    with serve(database, space, "multi-user.yaml", jwt_secret=SECRET) as client:
        own = bearer(mint_token({"sub": VICTIM}, secret=SECRET))
        post = client.post("/posts", json={"ownerId": VICTIM, "title": "draft"}, headers=own)
        assert client.put("/users/u1", json={"displayName": "U1"}, headers=own).status_code == 201
        note = client.post("/users/u1/notes", json={"text": "secret"}, headers=own)
        assert post.status_code == note.status_code == 201
        ids = {"post": post.json()["id"], "note": note.headers["location"].rsplit("/", 1)[1]}
        yield client, {**ids, "readonly": readonly, "foreign": foreign}


def operations(ids: dict[str, str]) -> list[tuple[str, str, str | None, Any]]:
    """(method, path of the victim's resource, the same path to a missing one, body)."""
    post = {"ownerId": VICTIM, "title": "taken over"}
    return [
        ("POST", "/posts", None, post),
        ("GET", f"/posts/{ids['post']}", "/posts/missing", None),
        ("PUT", f"/posts/{ids['post']}", None, post),
        ("PATCH", f"/posts/{ids['post']}", "/posts/missing", {"title": "taken over"}),
        ("DELETE", f"/posts/{ids['post']}", "/posts/missing", None),
        ("GET", "/users", None, None),
        ("GET", "/users/u1", "/users/nobody", None),
        ("PUT", "/users/u1", None, {"displayName": "taken over"}),
        ("DELETE", "/users/u1", "/users/nobody", None),
        ("GET", "/users/u1/notes", None, None),
        ("POST", "/users/u1/notes", None, {"text": "planted"}),
        ("GET", f"/users/u1/notes/{ids['note']}", "/users/u1/notes/missing", None),
        ("PATCH", f"/users/u1/notes/{ids['note']}", "/users/u1/notes/missing", {"text": "x"}),
        ("DELETE", f"/users/u1/notes/{ids['note']}", "/users/u1/notes/missing", None),
    ]


def snapshot(client: CheckedClient) -> Any:
    admin = bearer(mint_token({"sub": "admin", "isAdmin": True}, secret=SECRET))
    own = bearer(mint_token({"sub": VICTIM}, secret=SECRET))
    return (
        client.get("/posts", params={"limit": 100}, headers=admin).json(),
        client.get("/users", headers=admin).json(),
        client.get("/users/u1/notes", headers=own).json(),
    )


def test_no_attack_succeeds_or_reveals_anything(
    victim: tuple[CheckedClient, dict[str, str]],
) -> None:
    client, ids = victim
    before = snapshot(client)
    tried = 0
    for name, headers in attacks(ids["readonly"], ids["foreign"]).items():
        for method, path, missing, body in operations(ids):
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["json"] = body
            answer = client.request(method, path, **kwargs)
            tried += 1
            assert answer.status_code in (401, 403, 404), (name, method, path, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            if missing is not None:
                # The same request on a document that does not exist answers the same.
                other = client.request(method, missing, **kwargs)
                assert (other.status_code, other.json()) == (answer.status_code, answer.json()), (
                    name,
                    method,
                    path,
                )
    assert tried == 7 * 14
    assert snapshot(client) == before  # nothing was written, changed or removed
