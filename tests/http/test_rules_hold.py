"""Access rules hold on every path (issue 15): no take-over by PUT, no reading through
``$extends``, by-query writes obey the write rules, rules see inherited values, and a refused
caller learns nothing from preconditions or parents. Each test runs on both backends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from datastore.auth.credentials import mint_token
from datastore.storage.engine import Database
from tests.support.client import CheckedClient, serve

pytestmark = pytest.mark.citus_audit

SECRET = "rules-hold-test-secret-0123456789abcdef"
OWNER = "jwt.sub === document.ownerId"
WRITE = f"jwt.isAdmin === true || ({OWNER} && !(document.locked === true))"


def _schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string", "x-datastore-source": "document.$id", "readOnly": True},
            "extends": {
                "type": "string",
                "nullable": True,
                "x-datastore-source": "document.$extends",
            },
            "ownerId": {"type": "string"},
            "title": {"type": "string"},
            "secret": {"type": "string"},
            "public": {"type": "boolean"},
            "locked": {"type": "boolean"},
        },
        "additionalProperties": False,
    }


def _draft_schema() -> dict[str, Any]:
    schema = _schema()
    schema["properties"]["public"] = {"type": "boolean", "default": True}
    return schema


def _ok(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}} if schema is not None else None
    return {"description": "OK", **({"content": content} if content else {})}


def _collection(
    name: str, rules: dict[str, str], *, document_methods: tuple[str, ...], schema: str = "Doc"
) -> Any:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    body = {"required": True, "content": {"application/json": {"schema": ref}}}
    doc_ops: dict[str, Any] = {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    }
    for method in document_methods:
        op: dict[str, Any] = {"x-datastore-acl": rules[method], "responses": {"200": _ok(ref)}}
        if method in ("put", "patch"):
            op["requestBody"] = body
            op["responses"]["201"] = _ok(ref)
        if method == "delete":
            op["responses"] = {"204": {"description": "Deleted"}}
        doc_ops[method] = op
    by_query = {"x-datastore-acl": "jwt.sub !== ''", "responses": {"200": _ok({"type": "object"})}}
    return {
        f"/{name}": {
            "get": {
                "x-datastore-acl": rules.get("list", "public"),
                "responses": {"200": _ok({"type": "array", "items": ref})},
            },
            "post": {
                "x-datastore-acl": rules["post"],
                "requestBody": body,
                "responses": {"201": _ok(ref)},
            },
        },
        f"/{name}/_byquery": {"patch": by_query, "delete": by_query},
        f"/{name}/{{id}}": doc_ops,
    }


def blueprint() -> dict[str, Any]:
    docs = {
        "get": f"{OWNER} || document.public === true || jwt.isAdmin === true",
        "post": OWNER,
        "put": WRITE,
        "patch": WRITE,
        "delete": WRITE,
    }
    secrets = {
        "list": "jwt.isAdmin === true",
        **dict.fromkeys(("get", "post", "put"), "jwt.isAdmin === true"),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "rules hold", "version": "1"},
        "paths": {
            **_collection("docs", docs, document_methods=("get", "put", "patch", "delete")),
            **_collection("secrets", secrets, document_methods=("get", "put")),
            # No document PATCH or DELETE: by-query writes have no rule to select with.
            **_collection("notes", {"post": "public", "get": "public"}, document_methods=("get",)),
            # The same rules as docs, but a schema whose default makes documents public.
            **_collection("drafts", docs, document_methods=("get", "put"), schema="Draft"),
        },
        "components": {"schemas": {"Doc": _schema(), "Draft": _draft_schema()}},
    }


def auth(sub: str, **claims: Any) -> dict[str, str]:
    claims = {"sub": sub, "exp": int(time.time()) + 3600, **claims}
    return {"Authorization": f"Bearer {mint_token(claims, secret=SECRET)}"}


ALICE, BOB, ADMIN = auth("alice"), auth("bob"), auth("root", isAdmin=True)


@pytest.fixture
def app(database: Database, space: str) -> Iterator[CheckedClient]:
    with serve(database, space, blueprint(), jwt_secret=SECRET) as client:
        yield client


def put(app: CheckedClient, path: str, who: dict[str, str], **body: Any) -> httpx.Response:
    return app.put(path, json=body, headers=who)


def answer(response: httpx.Response) -> tuple[int, Any, str | None]:
    """What a caller learns: the status, the body and the ETag."""
    body = response.json() if response.content else None
    return response.status_code, body, response.headers.get("etag")


def test_put_cannot_take_over_another_users_document(app: CheckedClient) -> None:
    assert put(app, "/docs/p1", BOB, ownerId="bob", title="Bob's").status_code == 201
    taken = put(app, "/docs/p1", ALICE, ownerId="alice", title="pwned")
    missing = app.patch("/docs/nope", json={"title": "x"}, headers=ALICE)
    assert answer(taken) == answer(missing)  # 404 Document not found, as if it did not exist
    assert taken.status_code == 404
    assert app.get("/docs/p1", headers=BOB).json()["title"] == "Bob's"
    # With preconditions the answer is still that of a missing document.
    for headers in ({"If-Match": '"1"'}, {"If-Match": '"9"'}, {"If-Match": "*"}):
        refused = app.put("/docs/p1", json={"ownerId": "alice"}, headers={**ALICE, **headers})
        absent = app.put("/docs/p2", json={"ownerId": "alice"}, headers={**ALICE, **headers})
        assert answer(refused) == answer(absent)
        assert refused.status_code == 412
    refused = app.put(
        "/docs/p1", json={"ownerId": "alice"}, headers={**ALICE, "If-None-Match": "*"}
    )
    assert refused.status_code == 404
    assert app.get("/docs/p1", headers=BOB).json()["title"] == "Bob's"


def test_put_cannot_escape_a_lock_patch_enforces(app: CheckedClient) -> None:
    put(app, "/docs/p1", BOB, ownerId="bob", title="t")
    assert app.patch("/docs/p1", json={"locked": True}, headers=BOB).status_code == 403
    assert app.patch("/docs/p1", json={"locked": True}, headers=ADMIN).status_code == 200
    assert put(app, "/docs/p1", BOB, ownerId="bob", title="free").status_code == 403
    assert app.patch("/docs/p1", json={"locked": False}, headers=BOB).status_code == 403
    assert app.delete("/docs/p1", headers=BOB).status_code == 403
    assert app.get("/docs/p1", headers=BOB).json()["title"] == "t"
    # The result must pass as well: a PUT that hands the document to someone else is 403.
    put(app, "/docs/p2", BOB, ownerId="bob", title="t")
    assert put(app, "/docs/p2", BOB, ownerId="alice", title="gift").status_code == 403


def test_refused_writes_answer_as_for_a_missing_document(app: CheckedClient) -> None:
    put(app, "/docs/b1", BOB, ownerId="bob", title="t")
    for version in ('"1"', '"9"', "*"):
        headers = {**ALICE, "If-Match": version}
        for method in ("PATCH", "DELETE"):
            body = {"json": {"title": "x"}} if method == "PATCH" else {}
            existing = app.request(method, "/docs/b1", headers=headers, **body)
            missing = app.request(method, "/docs/zz", headers=headers, **body)
            assert answer(existing) == answer(missing)
            assert existing.status_code == 404
    assert app.get("/docs/b1", headers=BOB).json()["title"] == "t"


def invalid_target(response: httpx.Response) -> bool:
    problem = response.json()
    return (
        response.status_code == 400
        and problem["title"] == "Invalid extending document"
        and problem["invalid-params"]
        == [{"name": "extends", "reason": "Document to extend does not exist"}]
    )


def test_extends_cannot_read_what_the_caller_may_not(app: CheckedClient) -> None:
    put(app, "/docs/bobs", BOB, ownerId="bob", secret="bob's secret")
    put(app, "/secrets/s1", ADMIN, secret="admins only")
    for target in ("/docs/bobs", "/secrets/s1", "/docs/missing", "/nowhere/x"):
        body = {"ownerId": "alice", "extends": target}
        assert invalid_target(app.put("/docs/mine", json=body, headers=ALICE))
        assert invalid_target(app.post("/docs", json=body, headers=ALICE))
    put(app, "/docs/mine", ALICE, ownerId="alice", title="mine")
    patched = app.patch("/docs/mine", json={"extends": "/docs/bobs"}, headers=ALICE)
    assert invalid_target(patched)
    mine = app.get("/docs/mine", headers=ALICE).json()
    assert "secret" not in mine and mine.get("extends") in (None, "")
    # Detaching Bob's document copies nothing into Alice's: she never extended it.
    assert app.delete("/docs/bobs?detach=true", headers=BOB).status_code == 204
    assert "secret" not in app.get("/docs/mine", headers=ALICE).json()


def test_a_readable_target_may_be_extended_and_keeps_being_inherited(app: CheckedClient) -> None:
    put(app, "/docs/pub", BOB, ownerId="bob", title="shared", public=True)
    child = put(app, "/docs/child", ALICE, ownerId="alice", extends="/docs/pub")
    assert child.status_code == 201 and child.json()["title"] == "shared"
    # The target becomes unreadable to Alice: reads of her document keep inheriting...
    assert app.patch("/docs/pub", json={"public": False}, headers=BOB).status_code == 200
    assert app.get("/docs/child", headers=ALICE).json()["title"] == "shared"
    # ...but a write that names it again is refused like a missing target.
    assert invalid_target(put(app, "/docs/child", ALICE, ownerId="alice", extends="/docs/pub"))


def test_rules_see_inherited_values(app: CheckedClient) -> None:
    put(app, "/docs/base", ALICE, ownerId="alice", title="base")
    assert put(app, "/docs/child", ALICE, ownerId="alice", extends="/docs/base").status_code == 201
    app.patch("/docs/base", json={"locked": True}, headers=ADMIN)
    # The child inherits the lock: the same rules refuse it.
    assert put(app, "/docs/other", ALICE, ownerId="alice", extends="/docs/base").status_code == 403
    assert app.patch("/docs/child", json={"title": "x"}, headers=ALICE).status_code == 403
    assert app.delete("/docs/child", headers=ALICE).status_code == 403
    assert put(app, "/docs/child", ALICE, ownerId="alice", title="y").status_code == 403
    # A document that inherits its owner passes an owner rule.
    put(app, "/docs/open", ALICE, ownerId="alice", title="open")
    inheriting = app.post("/docs", json={"extends": "/docs/open", "title": "t"}, headers=ALICE)
    assert inheriting.status_code == 201, inheriting.text
    assert app.post("/docs", json={"extends": "/docs/open"}, headers=BOB).status_code == 400


def by_query(app: CheckedClient, method: str, who: dict[str, str], **kwargs: Any) -> Any:
    return app.request(method, "/docs/_byquery?q=" + json.dumps({}), headers=who, **kwargs)


def test_by_query_writes_obey_the_write_rules(app: CheckedClient) -> None:
    put(app, "/docs/b1", BOB, ownerId="bob", title="bob")
    put(app, "/docs/a1", ALICE, ownerId="alice", title="alice")
    put(app, "/docs/a2", ALICE, ownerId="alice", title="locked")
    app.patch("/docs/a2", json={"locked": True}, headers=ADMIN)
    reown = by_query(app, "PATCH", ALICE, json={"$set": {"title": "mine now"}})
    assert reown.status_code == 200 and reown.json() == {"count": 1}
    assert app.get("/docs/b1", headers=BOB).json()["title"] == "bob"
    assert app.get("/docs/a2", headers=ALICE).json()["title"] == "locked"
    # All or nothing: a result that breaks the rule refuses the whole request.
    gift = by_query(app, "PATCH", ALICE, json={"$set": {"ownerId": "bob"}})
    assert gift.status_code == 403
    assert app.get("/docs/a1", headers=ALICE).json()["ownerId"] == "alice"
    deleted = by_query(app, "DELETE", ALICE)
    assert deleted.json() == {"count": 1}
    assert app.get("/docs/b1", headers=BOB).status_code == 200
    assert app.get("/docs/a2", headers=ALICE).status_code == 200


def test_by_query_writes_without_a_document_rule_are_refused(app: CheckedClient) -> None:
    assert app.post("/notes", json={"title": "n"}).status_code == 201
    for method in ("PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"$set": {"title": "x"}}} if method == "PATCH" else {}
        refused = app.request(method, "/notes/_byquery?q={}", headers=ALICE, **kwargs)
        assert refused.status_code == 403
        assert f"no document {method} operation" in refused.json()["detail"]
    assert app.get("/notes").json()[0]["title"] == "n"


def test_reading_several_collections_shows_what_each_get_shows(app: CheckedClient) -> None:
    put(app, "/docs/d1", BOB, ownerId="bob", title="private")
    put(app, "/drafts/r1", BOB, ownerId="bob", title="public by default")
    assert app.get("/docs/d1", headers=ALICE).status_code == 404
    assert app.get("/drafts/r1", headers=ALICE).status_code == 200
    for order in (["/docs", "/drafts"], ["/drafts", "/docs"]):
        read = app.post("/__resources/collections", json={"collections": order}, headers=ALICE)
        assert [d["title"] for d in read.json()["data"]] == ["public by default"]
