"""A test client over the real ASGI app that checks every response against the blueprint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from datastore.app import ServedBlueprint, create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.conformance import Conformance

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINTS = ROOT / "blueprints"


class CheckedClient:
    """Sends requests through the app; every response must conform to the blueprint."""

    def __init__(self, client: TestClient, conformance: Conformance | None) -> None:
        self.client = client
        self.conformance = conformance

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        if self.conformance is not None:
            self.conformance.check(response)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@contextmanager
def serve(
    database: Database,
    space: str,
    blueprint: str | Path | dict[str, Any],
    *,
    check: bool = True,
    **settings: Any,
) -> Iterator[CheckedClient]:
    """Serve a blueprint (a file under blueprints/, a path, or a document) in ``space``."""
    if isinstance(blueprint, dict):
        served = ServedBlueprint(space, blueprint)
    else:
        path = Path(blueprint)
        if not path.is_absolute() and not path.exists():
            path = BLUEPRINTS / path
        served = serve_blueprint_file(path, space)
    app = create_app(Settings(migrate=False, **settings), [served], database=database)
    with TestClient(app, raise_server_exceptions=True) as client:
        # Responses are checked against the document the app publishes (/openapi.json).
        conformance = Conformance(client.get("/openapi.json").json()) if check else None
        yield CheckedClient(client, conformance)
