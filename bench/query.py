"""Query latency over 100,000 documents, through the real ASGI app, on both backends.

    python -m bench.query [--documents 100000] [--runs 200] [--backend postgresql,sqlite]

Scenarios: an indexed equality query, a range query with sort and limit 20, a $regex query,
and cursor pages 1 and 500 of a listing sorted by an indexed field (page[size]=20). Both
backends run in one run (on one machine, so their ratio is the figure to read: absolute
numbers on a shared machine are noisy); the table gives SQLite / PostgreSQL per scenario.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from starlette.testclient import TestClient

from bench.common import bulk_load, database, measure
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


SCENARIOS = (
    "indexed equality (q category)",
    "range + sort + limit 20",
    "$regex",
    "cursor page 1 (sorted)",
    "cursor page 500 (sorted)",
)
TARGETS = {
    "indexed equality (q category)": 2.0,
    "range + sort + limit 20": 2.0,
    "cursor page 1 (sorted)": 2.0,
    "cursor page 500 (sorted)": 2.0,
}
"""Issue 19: SQLite within this factor of PostgreSQL (p50, same run)."""


def run(backend: str, count: int, runs: int) -> dict[str, dict[str, float]]:
    """Each scenario's latency on ``backend`` over ``count`` documents."""
    results: dict[str, dict[str, float]] = {}
    with database(backend) as db:
        started = time.perf_counter()
        bulk_load(db, "bench", "items", count, item)
        loaded = time.perf_counter()
        ensure_indexes(db, index_specs(BLUEPRINT))
        indexed = time.perf_counter()
        print(
            f"{backend}: {count:,} documents loaded in {loaded - started:.1f} s,"
            f" indexes made in {indexed - loaded:.1f} s",
            flush=True,
        )
        app = create_app(
            Settings(migrate=False), [ServedBlueprint("bench", BLUEPRINT)], database=db
        )
        with TestClient(app) as client:

            def get(url: str, **params: Any) -> Any:
                response = client.get(url, params=params or None)
                assert response.status_code == 200, response.text
                return response.json()

            scenarios = {
                SCENARIOS[0]: lambda: get("/items", q=json.dumps({"category": "cat42"}), limit=20),
                SCENARIOS[1]: lambda: get(
                    "/items",
                    q=json.dumps({"price": {"$gte": 50, "$lt": 51}}),
                    sort="-price",
                    limit=20,
                ),
                SCENARIOS[2]: lambda: get(
                    "/items", q=json.dumps({"name": {"$regex": "^item-99"}}), limit=20
                ),
            }
            first = "/items?page[size]=20&sort=%2Bdocument.price"
            scenarios[SCENARIOS[3]] = lambda: get(first)
            url = first
            for _ in range(499):  # (the last page, with fewer documents)
                url = get(url)["links"]["next"] or url
            scenarios[SCENARIOS[4]] = lambda: get(url)
            for name, action in scenarios.items():
                results[name] = measure(action, runs=runs)
    return results


def comparison(title: str, measured: dict[str, dict[str, dict[str, float]]]) -> str:
    """A Markdown table: each scenario's p50 and p99 on both backends and SQLite/PostgreSQL."""
    lines = [
        f"### {title}",
        "",
        "| scenario | postgresql p50 / p99 ms | sqlite p50 / p99 ms | sqlite / postgresql (p50) |",
        "|---|---|---|---|",
    ]
    pg, lite = measured.get("postgresql", {}), measured.get("sqlite", {})
    for name in SCENARIOS:
        cells = [_cell(side.get(name)) for side in (pg, lite)]
        ratio = (
            f"{lite[name]['p50'] / pg[name]['p50']:.2f}x" if name in pg and name in lite else "-"
        )
        target = TARGETS.get(name)
        if target is not None and ratio != "-":
            ratio += " (target <= 2x: " + ("met" if float(ratio[:-1]) <= target else "MISSED") + ")"
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {ratio} |")
    for backend, side in measured.items():
        if SCENARIOS[3] in side and SCENARIOS[4] in side:
            deep = side[SCENARIOS[4]]["p50"] / side[SCENARIOS[3]]["p50"]
            lines.append(f"\npage 500 / page 1 on {backend}: {deep:.2f}x (p50)")
    return "\n".join(lines)


def _cell(stats: dict[str, float] | None) -> str:
    return "-" if stats is None else f"{stats['p50']:.2f} / {stats['p99']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backend", default="postgresql,sqlite")
    args = parser.parse_args()
    measured = {
        backend: run(backend, args.documents, args.runs) for backend in args.backend.split(",")
    }
    print(comparison(f"Queries over {args.documents:,} documents", measured))


if __name__ == "__main__":
    main()
