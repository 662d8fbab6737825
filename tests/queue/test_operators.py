"""The operators' queue endpoints (``GET /queue``, ``GET /queue/{topic}``,
``POST /queue/{topic}/{id}/_retry``), tried the way an attacker would: the enqueue is public
here, and still nobody but an API key of the space may list payloads and errors, nobody but a
writing key may retry, a refused caller learns nothing about topics or jobs, and no input is a
500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from datastore.app import ServedBlueprint, create_app
from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import mint_token
from datastore.clock import utc_now
from datastore.config import Settings
from datastore.storage.engine import Database
from datastore.storage.jobs import JobStore

SECRET = "q" * 32
TOPIC = [{"name": "topic", "in": "path", "required": True, "schema": {"type": "string"}}]
JSON = {"application/json": {"schema": {}}}


def blueprint(**extra: Any) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "queues", "version": "1"},
        "paths": {
            "/queue/{topic}": {
                "post": {
                    "x-datastore-acl": "public",
                    "parameters": TOPIC,
                    "requestBody": {"required": True, "content": JSON},
                    "responses": {"201": {"description": "queued", "content": JSON}},
                },
                **extra,
            }
        },
    }


@pytest.fixture
def queues(database: Database, space: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET, queue_max_attempts=1),
        [ServedBlueprint(space, blueprint())],
        database=database,
    )
    keys = ApiKeyStore(database)
    _, writer = keys.add(space, readonly=False)
    _, reader = keys.add(space, readonly=True)
    with TestClient(app) as client:
        jobs = [client.post("/queue/mail", json={"to": f"u{n}@x"}).json()["_id"] for n in range(3)]
        _kill(database, space, "mail", "SMTP said no")  # the oldest job dies (1 attempt)
        yield client, {"writer": writer, "reader": reader, "jobs": jobs, "space": space}


def _kill(database: Database, space: str, topic: str, error: str) -> None:
    store, now = JobStore(), utc_now()
    with database.write() as conn:
        job = store.claim(
            conn, space, [topic], worker="w", now=now, visibility=timedelta(seconds=60)
        )
        assert job is not None
        store.fail(conn, job, error, worker="w", now=now, retry_in=timedelta(seconds=1))


def _key(key: str) -> dict[str, str]:
    return {"x-apikey": key}


def test_an_api_key_lists_topics_counts_and_dead_letters(
    queues: tuple[TestClient, dict[str, Any]],
) -> None:
    client, ctx = queues
    for key in (ctx["writer"], ctx["reader"]):
        topics = client.get("/queue", headers=_key(key))
        assert topics.status_code == 200
        assert topics.json() == [
            {"topic": "mail", "counts": {"queued": 2, "running": 0, "done": 0, "dead": 1}}
        ]
        summary = client.get("/queue/mail", headers=_key(key)).json()
        assert summary["counts"]["dead"] == 1
        (dead,) = summary["dead"]
        assert (dead["_id"], dead["lastError"], dead["payload"]) == (
            ctx["jobs"][0],
            "SMTP said no",
            {"to": "u0@x"},
        )
    empty = client.get("/queue/nothing", headers=_key(ctx["reader"])).json()
    assert empty == {
        "topic": "nothing",
        "counts": {"queued": 0, "running": 0, "done": 0, "dead": 0},
        "dead": [],
    }


def test_a_writing_key_retries_a_dead_job_once(queues: tuple[TestClient, dict[str, Any]]) -> None:
    client, ctx = queues
    dead = ctx["jobs"][0]
    retried = client.post(f"/queue/mail/{dead}/_retry", headers=_key(ctx["writer"]))
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("queued", 0)
    again = client.post(f"/queue/mail/{dead}/_retry", headers=_key(ctx["writer"]))
    assert again.status_code == 409 and "only a dead job" in again.json()["detail"]
    alive = client.post(f"/queue/mail/{ctx['jobs'][1]}/_retry", headers=_key(ctx["writer"]))
    assert alive.status_code == 409
    for path in (f"/queue/other/{dead}/_retry", "/queue/mail/nope/_retry"):
        assert client.post(path, headers=_key(ctx["writer"])).status_code == 404
    counts = client.get("/queue/mail", headers=_key(ctx["reader"])).json()["counts"]
    assert counts == {"queued": 3, "running": 0, "done": 0, "dead": 0}


def test_nobody_else_learns_anything(queues: tuple[TestClient, dict[str, Any]]) -> None:
    client, ctx = queues
    dead = ctx["jobs"][0]
    token = mint_token({"sub": "root", "isAdmin": True, "role": "admin"}, secret=SECRET)
    callers: list[tuple[dict[str, str], int]] = [
        ({}, 401),
        ({"Authorization": f"Bearer {token}"}, 403),
        ({"x-apikey": "not-a-key"}, 401),
        ({"Authorization": "Bearer forged.token.here"}, 401),
    ]
    for headers, status in callers:
        for method, path in (
            ("GET", "/queue"),
            ("GET", "/queue/mail"),
            ("GET", "/queue/nothing"),
            ("POST", f"/queue/mail/{dead}/_retry"),
            ("POST", "/queue/mail/nope/_retry"),
        ):
            answer = client.request(method, path, headers=headers)
            assert answer.status_code == status, (headers, path)
            for secret in ("mail", "SMTP", "u0@x", dead, "dead", "queued"):
                assert secret not in answer.text, (headers, path, secret)
    readonly = client.post(f"/queue/mail/{dead}/_retry", headers=_key(ctx["reader"]))
    assert readonly.status_code == 403
    assert client.get("/queue/mail", headers=_key(ctx["reader"])).json()["counts"]["dead"] == 1


def test_another_space_s_key_sees_nothing(
    queues: tuple[TestClient, dict[str, Any]], database: Database
) -> None:
    client, ctx = queues
    _, stranger = ApiKeyStore(database).add(ctx["space"] + "x", readonly=False)
    assert client.get("/queue", headers=_key(stranger)).status_code == 401
    assert (
        client.post(f"/queue/mail/{ctx['jobs'][0]}/_retry", headers=_key(stranger)).status_code
        == 401
    )


@pytest.mark.parametrize(
    "path",
    [
        "/queue/mail?limit=0",
        "/queue/mail?limit=101",
        "/queue/mail?limit=abc",
        "/queue/mail?limit=-1",
        "/queue/mail?limit=1e3",
        "/queue/_hidden",
        "/queue/" + "t" * 300,
        "/queue/%FF",
        "/queue/a%2Fb",
    ],
)
def test_bad_input_is_a_400_or_404_never_a_500(
    queues: tuple[TestClient, dict[str, Any]], path: str
) -> None:
    client, ctx = queues
    answer = client.get(path, headers=_key(ctx["reader"]))
    assert answer.status_code in (400, 404), answer.text
    retry = client.post(path.split("?")[0] + "/x/_retry", headers=_key(ctx["writer"]))
    assert retry.status_code in (400, 404, 405), retry.text


def test_they_are_published_with_their_rules(database: Database, space: str) -> None:
    app = create_app(
        Settings(migrate=False), [ServedBlueprint(space, blueprint())], database=database
    )
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert paths["/queue"]["get"]["x-datastore-acl"] == (
        "apikey.readonly === true || apikey.readonly === false"
    )
    assert paths["/queue/{topic}"]["get"]["x-datastore-acl"].startswith("apikey.readonly")
    retry = paths["/queue/{topic}/{id}/_retry"]["post"]
    assert retry["x-datastore-acl"] == "apikey.readonly === false"
    assert {"404", "409", "401", "403"} <= set(retry["responses"])


def test_a_declared_summary_keeps_its_own_rule(database: Database, space: str) -> None:
    declared = {
        "get": {
            "x-datastore-acl": "jwt.isAdmin === true",
            "parameters": TOPIC,
            "responses": {"200": {"description": "summary", "content": JSON}},
        }
    }
    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET),
        [ServedBlueprint(space, blueprint(**declared))],
        database=database,
    )
    admin = {"Authorization": f"Bearer {mint_token({'isAdmin': True}, secret=SECRET)}"}
    user = {"Authorization": f"Bearer {mint_token({'sub': 'u'}, secret=SECRET)}"}
    with TestClient(app) as client:
        assert client.get("/queue/mail", headers=admin).json()["counts"]["queued"] == 0
        assert client.get("/queue/mail", headers=user).status_code == 403
