"""The data browser's routes over HTTP: ``/__admin`` served only with ``--admin`` or ``--dev``
(404 otherwise, whatever the blueprint routes), and ``<space>/__admin/why``, the rule
explanation, only under ``--dev``: what it answers, to whom, and that no input makes it fail
with a 500. The page itself is driven in a browser by ``tests/test_admin_browser.py``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from datastore.app import ServedBlueprint, create_app, serve_blueprint_file
from datastore.auth.acl import AclContext, evaluate, explain, expression_text, parse_rule
from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import mint_token
from datastore.blueprint.loader import load_blueprint
from datastore.config import DEV_SECRET, Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS

ASSETS = ("app.js", "form.js", "why.js", "ops.js", "admin.css")


def _client(
    database: Database, space: str, blueprint: str = "multi-user.yaml", **values: Any
) -> TestClient:
    settings = Settings(migrate=False, **values)
    app = create_app(
        settings, [serve_blueprint_file(BLUEPRINTS / blueprint, space)], database=database
    )
    return TestClient(app)


def _bearer(claims: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(claims, secret=DEV_SECRET)}"}


@pytest.mark.parametrize("blueprint", ["multi-user.yaml", "codehooks.yaml"])
def test_off_by_default_404_whatever_the_blueprint_routes(
    database: Database, space: str, blueprint: str
) -> None:
    """Off: 404 for the page, its files and the explanation, even where a dynamic
    ``/{collection}/{id}`` would otherwise take ``/__admin/why``."""
    with _client(database, space, blueprint) as client:
        for path in ("/__admin", "/__admin/static/app.js", "/__admin/why?path=/posts/p1"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("application/problem+json")


def test_admin_serves_the_page_without_the_explanation(database: Database, space: str) -> None:
    with _client(database, space, admin=True, jwt_secret="s" * 32) as client:
        page = client.get("/__admin")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "script-src 'self';" in page.headers["content-security-policy"]
        assert '"dev": false' in page.text and '"jwtURL": null' in page.text
        assert "https://" not in page.text  # nothing from elsewhere
        for name in ASSETS:
            asset = client.get(f"/__admin/static/{name}")
            assert asset.status_code == 200 and asset.content, name
            assert "https://" not in asset.text, name
        assert client.get("/__admin/static/../admin.py").status_code == 404
        assert client.get("/__admin/static/nothing.js").status_code == 404
        assert client.post("/__admin").status_code == 405
        # outside --dev the explanation does not exist, for anyone
        answer = client.get("/__admin/why", params={"path": "/posts/p1"})
        assert answer.status_code == 404
        admin = {
            "Authorization": f"Bearer {mint_token({'sub': 'a', 'isAdmin': True}, secret='s' * 32)}"
        }
        answer = client.get("/__admin/why", params={"path": "/posts/p1"}, headers=admin)
        assert answer.status_code == 404 and "rule" not in answer.text


def test_an_api_key_lists_the_stored_collections_and_no_one_else(
    database: Database, space: str
) -> None:
    """``GET <space>/__admin/collections``: the collections holding documents at the root
    (the dynamic ones of a Codehooks-style blueprint), for an API key of the space only."""
    with _client(database, space, "codehooks.yaml", admin=True, jwt_secret="s" * 32) as client:
        _, key = ApiKeyStore(database).add(space, readonly=True)
        operator = {"x-apikey": key}  # a read-only key may list
        _, writer = ApiKeyStore(database).add(space, readonly=False)
        for name in ("things", "Zebras", "a.b-c_d"):
            assert client.post(f"/{name}", json={"n": 1}, headers={"x-apikey": writer}).is_success
        listed = client.get("/__admin/collections", headers=operator)
        assert listed.status_code == 200, listed.text
        assert listed.json() == {
            "collections": sorted(["things", "Zebras", "a.b-c_d"]),
            "more": False,
        }
        anonymous = client.get("/__admin/collections")
        assert anonymous.status_code == 401 and "things" not in anonymous.text
        token = {
            "Authorization": f"Bearer {mint_token({'sub': 'a', 'isAdmin': True}, secret='s' * 32)}"
        }
        refused = client.get("/__admin/collections", headers=token)
        assert refused.status_code == 403 and "things" not in refused.text
        assert client.get("/__admin/collections", headers={"x-apikey": "nope"}).status_code == 401
        assert client.post("/__admin/collections", headers=operator).status_code == 405
        other_space = ApiKeyStore(database).add(space + "x", readonly=True)[1]
        assert (
            client.get("/__admin/collections", headers={"x-apikey": other_space}).status_code == 401
        )
    with _client(database, space, "codehooks.yaml") as client:  # the data browser off
        assert client.get("/__admin/collections", headers=operator).status_code == 404


def test_the_admin_flag_and_variable() -> None:
    from datastore.cli import build_parser
    from datastore.config import load_settings

    args = build_parser().parse_args(["serve", "api.yaml", "--admin"])
    assert load_settings(args, {}).admin is True
    assert load_settings(None, {"DATASTORE_ADMIN": "true"}).admin is True
    assert load_settings(None, {}).admin is False


def test_dev_serves_the_page_and_the_config_is_inert(database: Database, space: str) -> None:
    document = load_blueprint(BLUEPRINTS / "multi-user.yaml").document
    title = "</script><script>alert(1)</script> & <!-- Tom's"
    document = {**document, "info": {**document["info"], "title": title}}
    app = create_app(
        Settings(migrate=False, dev=True), [ServedBlueprint(space, document)], database=database
    )
    with TestClient(app) as client:
        page = client.get("/__admin").text
    config = page.split('id="admin-config">', 1)[1].split("</script>", 1)[0]
    assert "<" not in config  # a title cannot close the script element
    parsed = json.loads(config)
    assert parsed["dev"] is True and parsed["jwtURL"] == "/__jwt"
    assert parsed["spaces"] == [{"name": space, "base": "", "title": title}]


def _seed(client: TestClient) -> None:
    alice = _bearer({"sub": "alice"})
    answer = client.put(
        "/posts/p1", json={"ownerId": "alice", "title": "Draft", "body": "x"}, headers=alice
    )
    assert answer.status_code == 201, answer.text


def _operation(answer: dict[str, Any], method: str, on: str = "document") -> dict[str, Any]:
    return next(o for o in answer["operations"] if o["method"] == method and o["on"] == on)


def test_why_shows_each_rule_with_its_operand_values(database: Database, space: str) -> None:
    with _client(database, space, dev=True) as client:
        _seed(client)
        answer = client.get(
            "/__admin/why", params={"path": "/posts/p1"}, headers=_bearer({"sub": "bob"})
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["found"] is True and body["identity"]["claims"]["sub"] == "bob"
        get = _operation(body, "GET")
        assert get["result"] is False
        owner = get["tree"]["items"][1]
        assert owner["text"] == "jwt.sub === document.ownerId"
        assert (owner["left"]["value"], owner["right"]["value"], owner["result"]) == (
            "bob",
            "alice",
            False,
        )
        assert get["tree"]["items"][2]["left"] == {"text": "jwt.isAdmin", "missing": True}
        assert _operation(body, "GET", "collection")["result"] is True  # public listing

        alice = client.get(
            "/__admin/why", params={"path": "/posts/p1"}, headers=_bearer({"sub": "alice"})
        ).json()
        assert _operation(alice, "GET")["result"] is True
        assert _operation(alice, "DELETE")["result"] is True

        anonymous = client.get("/__admin/why", params={"path": "/posts/p1"}).json()
        assert anonymous["identity"]["authenticated"] is False
        delete = _operation(anonymous, "DELETE")
        assert delete["result"] is False and "credential" in delete["reason"]


def test_why_with_a_read_only_key_and_a_missing_document(database: Database, space: str) -> None:
    with _client(database, space, dev=True) as client:
        _seed(client)
        _, key = ApiKeyStore(database).add(space, readonly=True)
        body = client.get(
            "/__admin/why", params={"path": "/posts/p1"}, headers={"x-apikey": key}
        ).json()
        assert _operation(body, "PATCH")["reason"] == "a read-only API key may only read"
        missing = client.get("/__admin/why", params={"path": "/posts/none"}).json()
        assert missing["found"] is False


def test_why_agrees_with_what_the_datastore_answers(database: Database, space: str) -> None:
    """For each caller and each operation on a document, ``why``'s result is whether the
    request itself is then admitted (a refusal is a 401, a 403, or a 404 for a document that
    exists)."""
    stored = {"ownerId": "alice", "title": "Draft", "body": "x"}
    sent: dict[str, Any] = {"PUT": stored, "PATCH": {"$set": {"title": "Edited"}}}
    with _client(database, space, dev=True) as client:
        readonly, writer = (ApiKeyStore(database).add(space, readonly=r)[1] for r in (True, False))
        callers = {
            "anonymous": {},
            "owner": _bearer({"sub": "alice"}),
            "other": _bearer({"sub": "bob"}),
            "admin": _bearer({"sub": "carol", "isAdmin": True}),
            "read-only key": {"x-apikey": readonly},
            "key": {"x-apikey": writer},
        }
        for name, headers in callers.items():
            for method in ("GET", "PUT", "PATCH", "DELETE"):
                reseeded = client.put("/posts/p1", json=stored, headers=callers["owner"])
                assert reseeded.status_code in (200, 201), reseeded.text
                why = client.get("/__admin/why", params={"path": "/posts/p1"}, headers=headers)
                expected = _operation(why.json(), method)["result"]
                answer = client.request(method, "/posts/p1", json=sent.get(method), headers=headers)
                assert answer.status_code in (200, 201, 204, 401, 403, 404), answer.text
                assert (answer.status_code < 300) is expected, (name, method, answer.text)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({}, 400),
        ({"path": ""}, 400),
        ({"path": "/"}, 400),
        ({"path": "/posts"}, 400),
        ({"path": "posts/p1"}, 400),
        ({"path": "/posts/p1/x"}, 400),
        ({"path": "/" + "a/" * 2000 + "b"}, 400),
        ({"path": "/nothing/here"}, 404),
        ({"path": "/users/nobody/notes/n1"}, 404),
        ({"path": "/posts/%FF"}, 200),
        ({"path": "/posts/\u00e9\u4e2d"}, 200),
    ],
)
def test_why_never_fails_on_bad_input(
    database: Database, space: str, query: dict[str, str], status: int
) -> None:
    with _client(database, space, dev=True) as client:
        answer = client.get("/__admin/why", params=query)
        assert answer.status_code == status, answer.text
        assert client.post("/__admin/why", params=query).status_code == 405


def _expired() -> str:
    return mint_token({"sub": "b", "exp": 1}, secret=DEV_SECRET, expires_in=None)


def test_why_refuses_a_bad_credential(database: Database, space: str) -> None:
    with _client(database, space, dev=True) as client:
        for headers in (
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Basic abc"},
            {"x-apikey": "nope"},
            {"Authorization": f"Bearer {_expired()}"},
            {"Authorization": f"Bearer {mint_token({'sub': 'b'}, secret='x' * 32)}"},
        ):
            answer = client.get("/__admin/why", params={"path": "/posts/p1"}, headers=headers)
            assert answer.status_code == 401, headers
            assert "ownerId" not in answer.text


# -- acl.explain agrees with acl.evaluate -------------------------------------------------

_refs = st.sampled_from(
    ["jwt.sub", "jwt.isAdmin", "jwt.n", "document.ownerId", "document.n", "document.published"]
)
_literals = st.sampled_from(["'alice'", "'bob'", "true", "false", "1", "2.5", "null"])
_compare = st.builds(
    lambda a, op, b: f"{a} {op} {b}",
    _refs,
    st.sampled_from(["===", "!==", "<", ">=", "<=", ">"]),
    st.one_of(_refs, _literals),
)


@st.composite
def _rules(draw: st.DrawFn, depth: int = 0) -> str:
    """A rule of comparisons joined by &&, || and ! (at most three levels deep)."""
    if depth >= 3 or draw(st.booleans()):
        return draw(_compare)
    joiner = draw(st.sampled_from(["&&", "||", "!"]))
    if joiner == "!":
        return f"!({draw(_rules(depth + 1))})"
    return f"({draw(_rules(depth + 1))}) {joiner} ({draw(_rules(depth + 1))})"


_values = st.one_of(st.none(), st.booleans(), st.sampled_from(["alice", "bob"]), st.integers(0, 3))


@settings(max_examples=200, deadline=None)
@given(
    _rules(),
    st.dictionaries(st.sampled_from(["sub", "isAdmin", "n"]), _values),
    st.dictionaries(st.sampled_from(["ownerId", "n", "published"]), _values),
)
def test_explain_agrees_with_evaluate_and_prints_the_rule_back(
    text: str, claims: dict[str, Any], document: dict[str, Any]
) -> None:
    rule = parse_rule(text)
    assert rule.expr is not None
    ctx = AclContext(claims=claims, document=document)
    assert explain(rule.expr, ctx)["result"] == evaluate(rule, ctx)
    assert parse_rule(expression_text(rule.expr)).expr == rule.expr
