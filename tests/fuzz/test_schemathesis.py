"""Generated requests (schemathesis) against the served OpenAPI of every example blueprint,
with credentials: no 5xx, and every answer has a declared content type and conforms to the
declared schema. A bounded number of examples per operation keeps it in CI's budget.

Not (yet) checked here: status codes the examples do not declare (errors are problem+json
whatever their code) and requests the JSON Schema allows but the datastore refuses (ids with
control characters, read-only source properties) — see the reliability issue.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from datastore.app import create_app, serve_blueprint_file
from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import mint_token
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS

SECRET = "fuzz-secret-fuzz-secret-fuzz-secret-0"
CHECKS = (not_a_server_error, content_type_conformance, response_schema_conformance)
EXAMPLES = 12


def served(database: Database, name: str) -> tuple[Any, dict[str, str]]:
    space = f"f{uuid.uuid4().hex[:10]}"
    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET),
        [serve_blueprint_file(BLUEPRINTS / name, space)],
        database=database,
    )
    _, key = ApiKeyStore(database).add(space, readonly=False)
    token = mint_token({"sub": "u1", "isAdmin": True}, secret=SECRET)
    return app, {"x-apikey": key, "Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("name", ["events.yaml", "codehooks.yaml", "multi-user.yaml"])
def test_generated_requests(database: Database, name: str) -> None:
    app, headers = served(database, name)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    generated = 0
    for operation in schema.get_all_operations():
        op = operation.ok()

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            nonlocal generated
            generated += 1
            response = case.call(headers=headers)
            try:
                case.validate_response(response, checks=CHECKS)
            except AssertionError as exc:  # collect every operation's failures, then fail once
                failures.append(f"{case.method} {case.path}: {str(exc)[:300]}")

        run()
    assert generated > 0
    print(f"{name}: {generated} generated requests")
    assert failures == [], "\n".join(failures[:10])
