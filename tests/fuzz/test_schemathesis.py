"""Generated requests (schemathesis, every check) against the served OpenAPI document of every
example blueprint, with credentials, on both backends.

The schemathesis engine runs all its phases as ``st run`` would: examples, coverage (boundary
values, missing parameters, undeclared methods), fuzzing with valid *and* invalid data, and
stateful sequences (create, then read / update / delete what was created). Every check is on:
no server error, status codes / content types / bodies / headers as documented,
valid data accepted and invalid data rejected, required headers, 405 with ``Allow`` for
undeclared methods, authentication enforced, use after free, resources available once created.

The served document (``datastore/blueprint/publish.py``) declares the datastore's real error
responses (problem+json everywhere), the query parameters of listings, ``_count`` and
``_byquery`` (``q`` / ``h`` as JSON), every shape a listing answers, counters in the key-value
store, and the limits the server enforces where OpenAPI can say them (int64 bounds, no U+0000 in
declared text, path parameter rules), so these checks hold against it. What OpenAPI cannot
express remains, each excluded narrowly below (the case is named; every other case is checked in
full) and listed in docs/reliability.md:

1. Query languages: ``q`` must be a query the datastore understands (known operators, operand
   types), ``h`` hints of the right shapes, ``filters`` / ``sort`` / ``fields`` / ``omit``
   sentences of their grammars, ``page[after]`` / ``page[before]`` cursors the server minted.
   JSON Schema describes JSON values, not grammars or provenance: a 400 whose every
   invalid-param is one of these parameters (or below them) is exempt from
   ``positive_data_acceptance``.
2. SPEC §4 makes a ``$extends`` that names no existing document (or closes a cycle) a 400; a
   schema cannot say which documents exist. A 400 naming only such reasons is exempt from
   ``positive_data_acceptance``.
3. Free-form values (a schema's ``additionalProperties: true``, the seed's documents) may not
   hold integers outside the signed 64-bit range or text with U+0000 at any depth. Declared
   integers and strings carry ``format: int64`` bounds and a ``pattern``; a free-form value has
   no schema to carry them: a 400 naming only such integers or NUL characters is exempt from
   ``positive_data_acceptance``.
4. The stateful phase feeds values from responses into path parameters (an ``ownerId`` as a
   post id) and counts the request as valid data even when the value breaks the parameter's
   declared pattern (a control character): such a request is not checked by
   ``positive_data_acceptance`` (the datastore's 400 for it is right).
5. SPEC §7: ``_incr`` / ``_decr`` on a missing key start it at 0, so they re-create a deleted
   key; schemathesis does not count a write to ``/keyv/{key}/_incr`` as re-creating
   ``/keyv/{key}``. A key re-created that way after its DELETE is exempt from
   ``use_after_free``.
6. A change feed's cursor (``since``, ``Last-Event-ID``) must be one the log gave out and
   still keeps (docs/changes.md): a 410 of ``GET .../_changes`` is exempt from
   ``positive_data_acceptance``. The served app allows no long-polling wait
   (``changes_max_wait=0``, published as ``wait``'s maximum), so no request waits for writes.

Runs on PostgreSQL (the production backend; SQLite answers the same and is covered by the
conformance check of every HTTP test).

The seed is fixed (``SEED``); ``DATASTORE_FUZZ_SEED=random`` (or a number) explores, and every
failure report prints the seed that replays it. ``DATASTORE_FUZZ_EXAMPLES`` raises the examples
per operation for a longer local run.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

import pytest
import schemathesis
from jsonschema import Draft202012Validator
from schemathesis import engine
from schemathesis.checks import (
    positive_data_acceptance,
    use_after_free,
)
from schemathesis.engine import events

from datastore.app import create_app, serve_blueprint_file
from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import mint_token
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS

SECRET = "fuzz-secret-fuzz-secret-fuzz-secret-0"
EXAMPLES = int(os.environ.get("DATASTORE_FUZZ_EXAMPLES", "10"))
SEED = 20261123
"""CI runs one fixed seed, so a red build means a change, not luck; explore with
``DATASTORE_FUZZ_SEED=random`` (each failure prints the seed that replays it)."""


def _invalid_params(response: Any) -> list[dict[str, str]]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return []
    params = body.get("invalid-params") if isinstance(body, dict) else None
    return [p for p in params or [] if isinstance(p, dict)]


def _exempt(param: dict[str, str], declared_query: set[str]) -> bool:
    """Whether one invalid-param of a 400 is one of exemptions 1, 2 and 3."""
    name, reason = param.get("name", ""), param.get("reason", "")
    root = name.split(".", 1)[0]
    root = root if root in declared_query else root.split("[", 1)[0]
    if root in QUERY_LANGUAGE:
        return name.split(".", 1)[0] in declared_query  # 1: a query language's grammar
    if reason in EXTENDS_REASONS or reason.startswith("would create a cycle: "):
        return True  # 2: $extends names a document that does not exist, or a cycle
    return reason.startswith(("is an integer outside the 64-bit range", "contains a NUL"))  # 3


QUERY_LANGUAGE = ("q", "h", "filters", "sort", "fields", "omit", "page[after]", "page[before]")
EXTENDS_REASONS = (
    "Document to extend does not exist",
    "must be the path of a document, like /events/base",
)


def _path_parameters_valid(case: schemathesis.Case) -> bool:
    values = case.path_parameters or {}
    for param in case.operation.path_parameters:
        schema = param.definition.get("schema") or {}
        value = values.get(param.name)
        if isinstance(value, str) and not Draft202012Validator(schema).is_valid(value):
            return False
    return True


@schemathesis.check
def positive_data_acceptance_with_exemptions(
    ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case
) -> bool | None:
    """``positive_data_acceptance``, except exemptions 1 to 4 of the module docstring:
    a 400 is let through only when every invalid-param it names is exempt."""
    if not _path_parameters_valid(case):
        return None  # 4: not valid data, whatever schemathesis believes
    if response.status_code == 410 and case.operation.path.endswith("/_changes"):
        return None  # 6: a cursor the change log never gave out, or no longer keeps
    params = _invalid_params(response)
    declared = {p.name for p in case.operation.query}
    if response.status_code == 400 and params and all(_exempt(p, declared) for p in params):
        return None
    return positive_data_acceptance(ctx, response, case)


COUNTERS = ("PUT /keyv/{key}/_incr", "PUT /keyv/{key}/_decr")


@schemathesis.check
def use_after_free_but_counters(
    ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case
) -> bool | None:
    """``use_after_free``, except exemption 5 of the module docstring."""
    recorder = ctx.internals.recorder
    key = (case.path_parameters or {}).get("key")
    if recorder is not None and key is not None and case.operation.path.startswith("/keyv/"):
        recreated = False
        for earlier in recorder.find_all_cases():
            answer = recorder.find_response(case_id=earlier.id)
            if answer is None or not 200 <= answer.status_code < 300:
                continue
            if (earlier.path_parameters or {}).get("key") != key:
                continue
            if earlier.operation.label == "DELETE /keyv/{key}":
                recreated = False
            elif earlier.operation.label in COUNTERS:
                recreated = True
        if recreated:
            return None
    return use_after_free(ctx, response, case)


def served(database: Database, name: str) -> tuple[Any, dict[str, str]]:
    space = f"f{uuid.uuid4().hex[:10]}"
    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET, changes_max_wait=0),
        [serve_blueprint_file(BLUEPRINTS / name, space)],
        database=database,
    )
    _, key = ApiKeyStore(database).add(space, readonly=False)
    token = mint_token({"sub": "u1", "isAdmin": True}, secret=SECRET)
    return app, {"x-apikey": key, "Authorization": f"Bearer {token}"}


class Counting:
    """ASGI wrapper counting the requests that reach the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].endswith("/openapi.json"):
            self.requests += 1
        await self.app(scope, receive, send)


def run_engine(app: Any, headers: dict[str, str], seed: int) -> tuple[int, list[str]]:
    """Run every phase and check; (requests sent, failure descriptions)."""
    counting = Counting(app)
    config = schemathesis.Config.from_dict(
        {
            "seed": seed,
            "headers": headers,
            "suppress-health-check": ["all"],
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                "database": "none",
            },
            "checks": {
                "enabled": True,
                "positive_data_acceptance": {"enabled": False},
                "use_after_free": {"enabled": False},
            },
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", counting, config=config)
    failures: list[str] = []
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.append(
                            f"[{node.name}] {event.recorder.label}: {failure.title}\n"
                            f"{failure.message[:400]}\n{node.failure_info.code_sample[:1500]}"
                        )
        elif isinstance(event, events.NonFatalError):
            failures.append(f"[error] {event.label}: {event.value!r}"[:600])
        elif isinstance(event, events.FatalError):
            failures.append(f"[fatal] {event.exception!r}"[:600])
    return counting.requests, failures


@pytest.mark.parametrize("name", ["events.yaml", "codehooks.yaml", "multi-user.yaml"])
def test_generated_requests(database: Database, name: str) -> None:
    if not database.is_postgresql:
        pytest.skip("schemathesis runs on PostgreSQL, the production backend")
    chosen = os.environ.get("DATASTORE_FUZZ_SEED", str(SEED))
    seed = random.randrange(2**32) if chosen == "random" else int(chosen)
    app, headers = served(database, name)
    requests, failures = run_engine(app, headers, seed)
    backend = "postgresql" if database.is_postgresql else "sqlite"
    print(f"{name} on {backend}: {requests} generated requests (seed {seed})")
    assert requests > 150, requests
    assert failures == [], f"seed {seed}, {len(failures)} failures:\n" + "\n\n".join(failures[:8])
