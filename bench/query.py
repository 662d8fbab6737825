"""Query latency over 100,000 documents, through the real ASGI app, on both backends.

    python -m bench.query [--documents 100000] [--runs 200] [--backend postgresql,sqlite]

Scenarios: an indexed equality query, a range query with sort and limit 20, a $regex query,
and cursor pages 1 and 500 of a listing sorted by an indexed field (page[size]=20). Both
backends are loaded first, then each scenario runs on each backend in turn, a tenth of the
runs at a time, so that both meet the same load of the machine; the table gives SQLite /
PostgreSQL per scenario, the figure to read (absolute numbers on a shared machine are noisy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from starlette.testclient import TestClient

from bench.common import bulk_load, database
from datastore.app import ServedBlueprint, create_app
from datastore.config import Settings
from datastore.storage.engine import Database
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


Action = Callable[[], Any]


@contextmanager
def scenarios(backend: str, count: int) -> Iterator[dict[str, Action]]:
    """``backend`` loaded with ``count`` documents and indexed, served in-process: each
    scenario's request."""
    with database(backend) as db:
        started = time.perf_counter()
        bulk_load(db, "bench", "items", count, item)
        print(f"{backend}: {count:,} documents loaded in {time.perf_counter() - started:.1f} s")
        with served(backend, db) as actions:
            yield actions


@contextmanager
def existing(path: str) -> Iterator[dict[str, Action]]:
    """A SQLite file that already holds the items (``datastore import`` of ``item``s into
    collection ``items`` of space ``bench``), served in-process."""
    db = Database(f"sqlite:///{path}")
    try:
        with served("sqlite", db) as actions:
            yield actions
    finally:
        db.dispose()


@contextmanager
def served(backend: str, db: Database) -> Iterator[dict[str, Action]]:
    """The benchmark blueprint's indexes made on ``db`` and the app served in-process: each
    scenario's request."""
    started = time.perf_counter()
    ensure_indexes(db, index_specs(BLUEPRINT))
    print(f"{backend}: indexes made in {time.perf_counter() - started:.1f} s", flush=True)
    app = create_app(Settings(migrate=False), [ServedBlueprint("bench", BLUEPRINT)], database=db)
    with TestClient(app) as client:

        def get(url: str, **params: Any) -> Any:
            response = client.get(url, params=params or None)
            assert response.status_code == 200, response.text
            return response.json()

        actions: dict[str, Action] = {
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
        actions[SCENARIOS[3]] = lambda: get(first)
        url = first
        for _ in range(499):  # (the last page, with fewer documents)
            url = get(url)["links"]["next"] or url
        actions[SCENARIOS[4]] = lambda: get(url)
        yield actions


def interleaved(
    actions: dict[str, dict[str, Action]], runs: int, rounds: int = 10
) -> dict[str, dict[str, dict[str, float]]]:
    """Each scenario measured on every backend in turn, ``runs / rounds`` requests at a time,
    so that both meet the same load of the shared machine; (backend, scenario) → statistics."""
    samples: dict[str, dict[str, list[float]]] = {b: {} for b in actions}
    for name in SCENARIOS:
        for own in actions.values():
            for _ in range(5):  # warm-up
                own[name]()
        for _ in range(rounds):
            for backend, own in actions.items():
                taken = samples[backend].setdefault(name, [])
                for _ in range(max(1, runs // rounds)):
                    began = time.perf_counter()
                    own[name]()
                    taken.append((time.perf_counter() - began) * 1000)
    return {b: {n: _stats(t) for n, t in by.items()} for b, by in samples.items()}


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50": statistics.median(samples),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


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
    parser.add_argument(
        "--sqlite-file", help="measure this SQLite file (items imported) instead of loading one"
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.sqlite_file:
            actions = {"sqlite": stack.enter_context(existing(args.sqlite_file))}
            title = f"Queries over {args.sqlite_file}"
        else:
            actions = {
                backend: stack.enter_context(scenarios(backend, args.documents))
                for backend in args.backend.split(",")
            }
            title = f"Queries over {args.documents:,} documents"
        measured = interleaved(actions, args.runs)
    print(comparison(title, measured))


if __name__ == "__main__":
    main()
