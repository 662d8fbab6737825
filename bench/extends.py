"""Inheritance costs: GET of a document at depth 1, 5 and 20, and a filtered list over 10,000
documents half of which inherit the filtered field.

    python -m bench.extends [--runs 200] [--backend postgresql,sqlite]
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from starlette.testclient import TestClient

from bench.common import bulk_load, database, measure, table
from datastore.app import ServedBlueprint, create_app
from datastore.config import Settings

SCHEMA = {
    "type": "object",
    "properties": {
        "parent": {"type": ["string", "null"], "x-datastore-source": "document.$extends"},
        "category": {"type": "string"},
        "n": {"type": "integer"},
    },
}
BODY = {"content": {"application/json": {"schema": SCHEMA}}}
BLUEPRINT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "bench", "version": "1"},
    "paths": {
        "/docs": {
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}}
        },
        "/docs/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {
                "x-datastore-acl": "public",
                "responses": {"200": {"description": "ok", **BODY}},
            },
            "put": {
                "x-datastore-acl": "public",
                "requestBody": BODY,
                "responses": {"200": {"description": "ok"}, "201": {"description": "ok"}},
            },
        },
    },
}


def run(backend: str, runs: int) -> list[tuple[str, str, dict[str, float]]]:
    results = []
    with database(backend) as db:
        bulk_load(
            db,
            "bench",
            "docs",
            10_000,
            lambda n: {"n": n} if n % 2 else {"n": n, "category": f"c{n % 10}"},
        )
        app = create_app(
            Settings(migrate=False), [ServedBlueprint("bench", BLUEPRINT)], database=db
        )
        with TestClient(app) as client:
            client.put("/docs/base", json={"category": "c3", "n": 0})
            # Half of the documents inherit "category": odd ones extend base.
            for n in range(1, 10_000, 2):
                response = client.put(f"/docs/d{n:07}", json={"n": n, "parent": "/docs/base"})
                assert response.status_code == 200, response.text
            previous = "/docs/base"
            for depth in range(1, 21):
                client.put(f"/docs/chain{depth}", json={"parent": previous, "n": depth})
                previous = f"/docs/chain{depth}"
            for depth in (1, 5, 20):
                url = f"/docs/chain{depth}"
                assert client.get(url).json()["category"] == "c3"
                results.append(
                    (
                        f"GET at depth {depth}",
                        backend,
                        measure(partial(client.get, url), runs=runs),
                    )
                )
            listing = "/docs?filters=document.category===c3&limit=20"
            assert len(client.get(listing).json()) == 20
            results.append(
                (
                    "filtered list, 10k docs, half inheriting",
                    backend,
                    measure(lambda: client.get(listing), runs=runs),
                )
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backend", default="postgresql,sqlite")
    args = parser.parse_args()
    rows = []
    for backend in args.backend.split(","):
        rows.extend(run(backend, args.runs))
    print(table("Inheritance", rows))


if __name__ == "__main__":
    main()
