"""Key-value throughput through the real ASGI app: GET, PUT and increments per second.

python -m bench.kv [--seconds 5] [--backend postgresql,sqlite]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from bench.common import database
from datastore.app import ServedBlueprint, create_app
from datastore.config import Settings

KEY = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}]
OK = {"200": {"description": "ok"}}
BLUEPRINT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "kv", "version": "1"},
    "paths": {
        "/keyv/{key}": {
            "parameters": KEY,
            "get": {"x-datastore-acl": "public", "responses": OK},
            "put": {
                "x-datastore-acl": "public",
                "responses": OK,
                "requestBody": {"content": {"application/json": {"schema": {}}}},
            },
        },
        "/keyv/{key}/_incr": {
            "parameters": KEY,
            "put": {
                "x-datastore-acl": "public",
                "responses": OK,
                "requestBody": {"content": {"application/json": {"schema": {}}}},
            },
        },
    },
}


def rate(action: Callable[[int], Any], seconds: float) -> float:
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        action(count)
        count += 1
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--backend", default="postgresql,sqlite")
    args = parser.parse_args()
    print("| operation | backend | requests/s (one client, in-process) |\n|---|---|---|")
    for backend in args.backend.split(","):
        with database(backend) as db:
            app = create_app(
                Settings(migrate=False), [ServedBlueprint("kv", BLUEPRINT)], database=db
            )
            with TestClient(app) as client:
                client.put("/keyv/k0", json={"v": 0})
                scenarios = {
                    "PUT": lambda n: client.put(f"/keyv/k{n % 1000}", json={"v": n}),
                    "GET": lambda n: client.get(f"/keyv/k{n % 1000 if n < 1000 else 0}"),
                    "incr": lambda n: client.put("/keyv/hits/_incr", json={"value": 1}),
                }
                for name, action in scenarios.items():
                    print(f"| {name} | {backend} | {rate(action, args.seconds):,.0f} |")


if __name__ == "__main__":
    main()
