"""50 clients for 30 seconds of mixed creates, $inc PATCHes and DELETEs on a few documents
(PostgreSQL, a real server): afterwards every acknowledged answer fits a serial history.

Each document's life is a chain: created (version 1, with a fresh random marker and n = 0), then
PATCHed ($inc n by 1, so at version v, n must be v - 1), until deleted. A lost or doubled update
shows as an acknowledged answer whose n is not its version - 1, or as two answers with the same
marker and version. The final state of each document must be the last acknowledged version of
its chain. No request may get a 5xx (deadlocks are retried inside).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS
from tests.support.live import live_server

CLIENTS = 50
SECONDS = 30
DOCUMENTS = [f"d{n}" for n in range(6)]
EVENT = {"name": "x", "eventDate": "2026-01-01T00:00:00Z"}


def test_mixed_load_is_serialisable(database: Database, space: str) -> None:
    if not database.is_postgresql:
        import pytest

        pytest.skip("the concurrency replay runs on PostgreSQL (SQLite serialises writers)")
    app = create_app(
        Settings(migrate=False, pool_size=20),
        [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
        database=database,
    )
    acks: list[tuple[str, str, int, dict[str, Any]]] = []  # (doc, op, version, body)
    server_errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(seed: int) -> int:
        rng = random.Random(seed)
        done = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                doc = rng.choice(DOCUMENTS)
                roll = rng.random()
                if roll < 0.2:
                    response = http.put(
                        f"/events/{doc}",
                        json={**EVENT, "description": uuid.uuid4().hex, "capacity": 1},
                        headers={"If-None-Match": "*"},
                    )
                    op = "create"
                elif roll < 0.9:
                    response = http.patch(f"/events/{doc}", json={"$inc": {"capacity": 1}})
                    op = "inc"
                else:
                    response = http.delete(f"/events/{doc}")
                    op = "delete"
                done += 1
                if response.status_code >= 500:
                    with lock:
                        server_errors.append(f"{op} {doc}: {response.text[:200]}")
                elif 200 <= response.status_code < 300 and op != "delete":
                    version = int(response.headers["etag"].strip('"'))
                    with lock:
                        acks.append((doc, op, version, response.json()))
        return done

    with live_server(app) as url:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            requests = sum(pool.map(client, range(CLIENTS)))
        with httpx.Client(base_url=url) as http:
            final = {d: http.get(f"/events/{d}") for d in DOCUMENTS}
    assert server_errors == [], server_errors[:5]
    assert requests > 500 and len(acks) > 100, (requests, len(acks))
    chains: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for doc, op, version, body in acks:
        # capacity starts at 1 on creation and every acknowledged $inc adds exactly 1.
        assert body["capacity"] == version, (doc, op, version, body)
        if op == "create":
            assert version == 1
        chains[(doc, body["description"])].append((version, body))
    for (doc, marker), answers in chains.items():
        versions = sorted(v for v, _ in answers)
        assert versions == list(range(1, len(versions) + 1)), (doc, marker, versions)
    for doc, response in final.items():
        if response.status_code == 404:
            continue
        body = response.json()
        version = int(response.headers["etag"].strip('"'))
        chain = chains[(doc, body["description"])]
        assert max(v for v, _ in chain) == version, (doc, version)
        assert body["capacity"] == version
    print(f"{requests} requests, {len(acks)} acknowledged writes, {len(chains)} document lives")
