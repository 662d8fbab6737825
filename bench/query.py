"""Query latency over 100,000 documents, through the real ASGI app, on both backends.

    python -m bench.query [--documents 100000] [--runs 200] [--backend postgresql,sqlite]

Scenarios: an indexed equality query, a range query with sort and limit 20, a $regex query,
and a deep cursor page (page 500 of a sorted listing with page[size]=20).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from starlette.testclient import TestClient

from bench.common import bulk_load, database, measure, table
from datastore.app import ServedBlueprint, create_app
from datastore.config import Settings
from datastore.storage.indexes import ensure_indexes, index_specs

BLUEPRINT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "bench", "version": "1"},
    "paths": {
        "/items": {
            "x-datastore-indexes": ["category", "price"],
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
        },
        "/items/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
        },
    },
}
CATEGORIES = [f"cat{n}" for n in range(200)]


def item(n: int) -> dict[str, Any]:
    return {
        "category": CATEGORIES[n % 200],
        "price": (n * 7919) % 10000 / 100,
        "name": f"item-{n}",
        "tags": ["a", "b"] if n % 3 else ["c"],
    }


def run(backend: str, count: int, runs: int) -> list[tuple[str, str, dict[str, float]]]:
    results = []
    with database(backend) as db:
        bulk_load(db, "bench", "items", count, item)
        ensure_indexes(db, index_specs(BLUEPRINT))
        app = create_app(
            Settings(migrate=False), [ServedBlueprint("bench", BLUEPRINT)], database=db
        )
        with TestClient(app) as client:

            def get(url: str, **params: Any) -> Any:
                response = client.get(url, params=params or None)
                assert response.status_code == 200, response.text
                return response.json()

            scenarios = {
                "indexed equality (q category)": lambda: get(
                    "/items", q=json.dumps({"category": "cat42"}), limit=20
                ),
                "range + sort + limit 20": lambda: get(
                    "/items",
                    q=json.dumps({"price": {"$gte": 50, "$lt": 51}}),
                    sort="-price",
                    limit=20,
                ),
                "$regex": lambda: get(
                    "/items", q=json.dumps({"name": {"$regex": "^item-99"}}), limit=20
                ),
            }
            for name, action in scenarios.items():
                results.append((name, backend, measure(action, runs=runs)))
            url = "/items?page[size]=20&sort=%2Bdocument.price"
            for _ in range(499):
                url = get(url)["links"]["next"]
            results.append(
                ("cursor page 500 (sorted)", backend, measure(lambda: get(url), runs=runs))
            )
            first = "/items?page[size]=20&sort=%2Bdocument.price"
            results.append(
                ("cursor page 1 (sorted)", backend, measure(lambda: get(first), runs=runs))
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backend", default="postgresql,sqlite")
    args = parser.parse_args()
    rows = []
    for backend in args.backend.split(","):
        rows.extend(run(backend, args.documents, args.runs))
    print(table(f"Queries over {args.documents:,} documents", rows))


if __name__ == "__main__":
    main()
