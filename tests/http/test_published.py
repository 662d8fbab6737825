"""The document served at /openapi.json describes what the datastore really does: where it is
served, every error status each operation can answer with (as problem+json), the rules of its
path parameters, partial PATCH bodies, and the credentials it accepts. The fuzz tests and the
conformance checks of every HTTP test run against this document."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.blueprint.loader import load_blueprint
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS

pytestmark = pytest.mark.citus_audit


def published(database: Database, space: str, name: str, **settings: Any) -> dict[str, Any]:
    served = [serve_blueprint_file(BLUEPRINTS / name, space)]
    app = create_app(Settings(migrate=False, **settings), served, database=database)
    with TestClient(app) as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def codes(document: dict[str, Any], path: str, method: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_servers_name_where_the_space_is_served(database: Database, space: str) -> None:
    # The Codehooks seed names https://{projectId}.api.codehooks.io/{space}: generated requests
    # went to /dev/... and never reached an operation.
    assert published(database, space, "codehooks.yaml")["servers"] == [{"url": "/"}]
    other = f"{space}x"
    app = create_app(
        Settings(migrate=False),
        [
            serve_blueprint_file(BLUEPRINTS / "events.yaml", space),
            serve_blueprint_file(BLUEPRINTS / "codehooks.yaml", other),
        ],
        database=database,
    )
    with TestClient(app) as client:
        document = client.get(f"/{other}/openapi.json").json()
    assert document["servers"] == [{"url": f"/{other}"}]


def test_error_statuses_per_operation(database: Database, space: str) -> None:
    document = published(database, space, "events.yaml")
    # What events.yaml declares itself stays as written; the rest is added.
    assert codes(document, "/events", "post") == {
        "201", "400", "401", "409", "413", "415", "503"
    }  # fmt: skip
    assert codes(document, "/events", "get") == {"200", "400", "401", "503"}
    assert codes(document, "/events/{eventid}", "get") == {
        "200", "304", "400", "401", "404", "503"
    }  # fmt: skip
    # PUT /events/_changes reaches the change feed's template, which has no PUT (405).
    assert codes(document, "/events/{eventid}", "put") == {
        "200", "201", "400", "401", "405", "409", "412", "413", "415", "503"
    }  # fmt: skip
    assert codes(document, "/events/{eventid}/comments/{commentid}", "put") == {
        "201", "400", "401", "404", "405", "409", "412", "413", "415", "503"
    }  # fmt: skip
    assert codes(document, "/events/_changes", "get") == {
        "200", "400", "401", "410", "503"
    }  # fmt: skip
    assert codes(document, "/events/{eventid}/comments/_changes", "get") == {
        "200", "400", "401", "404", "410", "503"
    }  # fmt: skip
    assert codes(document, "/events/{eventid}/comments", "get") == {
        "200", "400", "401", "404", "503"
    }  # fmt: skip
    added = document["paths"]["/events/{eventid}"]["delete"]["responses"]["412"]
    schema = added["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/DatastoreProblem"}
    # a declared error answer without content gains the problem it really is
    assert document["paths"]["/events/{eventid}"]["get"]["responses"]["404"] == {
        "description": "No such event",
        "content": {"application/problem+json": {"schema": schema}},
    }
    unavailable = document["paths"]["/events"]["get"]["responses"]["503"]
    assert unavailable["headers"]["Retry-After"]["required"] is True
    # public operations refuse nothing: no 403 anywhere in events.yaml
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert not any("403" in op["responses"] for op in operations if isinstance(op, dict))


def test_forbidden_only_where_a_rule_or_a_read_only_key_can_refuse(
    database: Database, space: str
) -> None:
    rules = published(database, space, "multi-user.yaml", jwt_secret="s" * 32)
    assert "403" in codes(rules, "/posts/{postid}", "get")
    assert "403" not in codes(rules, "/posts", "get")  # public
    seed = published(database, space, "codehooks.yaml")
    assert "403" not in codes(seed, "/{collection}/{id}", "get")  # any credential reads
    assert "403" in codes(seed, "/{collection}/{id}", "put")  # a read-only key cannot write
    assert codes(seed, "/keyv/{key}/_incr", "put") >= {"409", "413", "415"}
    assert "404" in codes(seed, "/queue/{topic}/{id}", "get")
    assert "404" in codes(seed, "/{collection}", "post")  # not a collection called "keyv"


def test_the_seed_itself_is_unchanged(database: Database, space: str) -> None:
    document = published(database, space, "codehooks.yaml")
    seed = load_blueprint(BLUEPRINTS / "codehooks.yaml").document
    for path, item in seed["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                served = document["paths"][path][method]["responses"][status]
                assert served["description"] == response["description"]
                for media, declared in response.get("content", {}).items():
                    # kept, or widened to what is really answered with the declared first
                    schema = served["content"][media]["schema"]
                    assert schema in (
                        declared["schema"],
                        {"anyOf": [declared["schema"], *schema.get("anyOf", [])[1:]]},
                    )
    assert seed["servers"][0]["url"].startswith("https://")  # the file is not touched


def test_path_parameters_carry_the_datastore_rules(database: Database, space: str) -> None:
    seed = published(database, space, "codehooks.yaml")
    params = {
        p["name"]: p["schema"] for p in seed["paths"]["/{collection}/{id}"]["get"]["parameters"]
    }
    assert params["id"]["pattern"].startswith("^(?!\\.\\.?$)")
    assert "keyv" in params["collection"]["pattern"] and "queue" in params["collection"]["pattern"]
    listing = {
        p["name"]: p.get("schema") for p in seed["paths"]["/{collection}"]["get"]["parameters"]
    }
    assert (listing["limit"]["minimum"], listing["limit"]["maximum"]) == (0, 1000)
    assert listing["limit"]["default"] == 100  # the seed's own keyword stays
    job = {
        p["name"]: p["schema"] for p in seed["paths"]["/queue/{topic}/{id}"]["get"]["parameters"]
    }
    assert job["id"]["pattern"] == params["id"]["pattern"]
    assert job["topic"]["pattern"].startswith("^[A-Za-z0-9]")
    ttl = seed["paths"]["/keyv/{key}"]["put"]["parameters"][1]
    assert ttl["name"] == "ttl" and ttl["schema"]["minimum"] == 1
    events = published(database, space, "events.yaml")
    # events.yaml sets its own pattern: kept as written
    own = events["paths"]["/events/{eventid}"]["parameters"][0]["schema"]["pattern"]
    assert own == "^(?!\\.\\.?$)[^/\\x00-\\x1f\\x7f]{1,255}$"


def test_patch_bodies_are_partial_and_integers_64_bit(database: Database, space: str) -> None:
    document = published(database, space, "events.yaml")
    patch = document["paths"]["/events/{eventid}"]["patch"]["requestBody"]
    schema = patch["content"]["application/json"]["schema"]
    assert "required" not in schema and "name" in schema["properties"]
    assert "propertyNames" not in schema  # OpenAPI 3.0 has no such keyword (3.1 below has)
    put = document["paths"]["/events/{eventid}"]["put"]["requestBody"]
    assert put["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/event"}
    assert document["components"]["schemas"]["event"]["required"] == ["name", "eventDate"]
    assert document["components"]["schemas"]["event"]["properties"]["capacity"]["format"] == "int64"
    seed = published(database, space, "codehooks.yaml")
    for path in ("/{collection}/{id}", "/{collection}/_byquery"):
        body = seed["paths"][path]["patch"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["propertyNames"] == {"pattern": "^(?:[^$]|$)"}
        assert body["schema"]["additionalProperties"] is True


def test_any_credential_is_declared_where_one_is_needed(database: Database, space: str) -> None:
    rules = published(database, space, "multi-user.yaml", jwt_secret="s" * 32)
    schemes = rules["components"]["securitySchemes"]
    assert schemes["datastoreBearer"]["scheme"] == "bearer"
    assert schemes["datastoreApiKey"]["name"] == "x-apikey"
    assert rules["paths"]["/posts/{postid}"]["get"]["security"] == [
        {"datastoreBearer": []},
        {"datastoreApiKey": []},
    ]
    assert "security" not in rules["paths"]["/posts"]["get"]  # public
    seed = published(database, space, "codehooks.yaml")
    # The seed requires its apiKey scheme globally; a bearer token works as well.
    assert seed["paths"]["/{collection}"]["get"]["security"] == [
        {"apiKey": []},
        {"datastoreBearer": []},
    ]
