"""Two ``datastore serve`` processes against one fresh PostgreSQL database, driven at once:
nothing a single server guarantees may break when a second one writes the same rows.

Both start together (each migrates and creates the blueprint's indexes at start-up); then
``If-None-Match: *`` creates of one id through both (exactly one 201), ``$inc`` on one
document through both (the exact sum), re-parenting two documents onto each other through
both (never a cycle), and queue jobs enqueued through both and claimed by two workers
(each exactly once).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from datastore.blueprint.loader import load_blueprint
from datastore.storage.engine import Database
from datastore.storage.indexes import index_names, index_specs
from tests.conftest import new_postgres_database
from tests.http.test_documents import EVENT
from tests.support.live import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = ROOT / "blueprints"
INDEXED = ["cost", "venue.city"]


def _environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATASTORE_DATABASE_URL": database_url,
        "DATASTORE_LOG_LEVEL": "warning",
    }


def _events_blueprint(folder: Path) -> Path:
    """blueprints/events.yaml (its $refs bundled) with expression indexes to create at
    start-up."""
    document = load_blueprint(BLUEPRINTS / "events.yaml").document
    document["paths"]["/events"]["x-datastore-indexes"] = INDEXED
    path = folder / "events-indexed.json"
    path.write_text(json.dumps(document))
    return path


def _serve(env: dict[str, str], events: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "datastore.cli", "serve", "--port", str(port)]
    command += ["--space", f"ev={events}", "--space", f"hooks={BLUEPRINTS / 'codehooks.yaml'}"]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def servers_database_url(postgres_url: str) -> Iterator[str]:
    """One fresh database for the module's two servers."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def two_servers(
    servers_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two servers started at the same moment on one fresh database; their base URLs."""
    tmp_path = tmp_path_factory.mktemp("servers")
    env = _environment(servers_database_url)
    events = _events_blueprint(tmp_path)
    ports = [free_port(), free_port()]
    servers = [_serve(env, events, port, tmp_path / f"serve-{port}.log") for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, server in zip(urls, servers, strict=True):
            try:
                wait_until_healthy(url, seconds=60)
            except RuntimeError:
                logs = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
                raise RuntimeError(f"{url} did not start (exit {server.poll()}): {logs}") from None
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture
def database_of_servers(servers_database_url: str) -> Iterator[Database]:
    db = Database(servers_database_url)
    yield db
    db.dispose()


def _at_once(calls: list[tuple[str, str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send every (base URL, method, path, keyword arguments) request concurrently."""

    def send(call: tuple[str, str, str, dict[str, Any]]) -> httpx.Response:
        base, method, path, kwargs = call
        with httpx.Client(base_url=base, timeout=30) as client:
            return client.request(method, path, **kwargs)

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(send, calls))


def test_both_servers_created_the_indexes_at_start_up(
    two_servers: list[str], database_of_servers: Database
) -> None:
    specs = index_specs({"paths": {"/events": {"x-datastore-indexes": INDEXED}}})
    with database_of_servers.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%(n)s)",
            {"n": index_names(specs)},
        )
        assert {row[0] for row in rows} == set(index_names(specs))
    for url in two_servers:
        assert httpx.get(f"{url}/ev/events").status_code == 200


def test_one_create_wins_across_servers(two_servers: list[str]) -> None:
    for round_ in range(3):
        path = f"/ev/events/only-{round_}"
        calls = [
            (url, "PUT", path, {"json": {**EVENT, "cost": n}, "headers": {"If-None-Match": "*"}})
            for n, url in zip(range(16), itertools.cycle(two_servers), strict=False)
        ]
        statuses = sorted(r.status_code for r in _at_once(calls))
        assert statuses == [201] + [412] * 15, statuses


def test_increments_through_both_servers_add_up(two_servers: list[str]) -> None:
    first = two_servers[0]
    assert httpx.put(f"{first}/ev/events/counted", json={**EVENT, "cost": 0}).status_code == 201
    calls = [
        (url, "PATCH", "/ev/events/counted", {"json": {"$inc": {"cost": 1}}})
        for _, url in zip(range(100), itertools.cycle(two_servers), strict=False)
    ]
    assert {r.status_code for r in _at_once(calls)} == {200}
    for url in two_servers:
        assert httpx.get(f"{url}/ev/events/counted").json()["cost"] == 100


def _chain_ends(documents: dict[str, str | None], start: str) -> bool:
    seen = {start}
    current = documents[start]
    while current:
        name = current.rsplit("/", 1)[-1]
        if name in seen:
            return False
        seen.add(name)
        current = documents[name]
    return True


def test_reparenting_through_both_servers_never_stores_a_cycle(two_servers: list[str]) -> None:
    names = ["r0", "r1", "r2"]
    for name in names:
        assert httpx.put(f"{two_servers[0]}/ev/events/{name}", json=EVENT).status_code == 201
    for round_ in range(5):
        # Every document asks to extend the next one: all of them together would be a cycle.
        calls = [
            (
                two_servers[(n + round_) % 2],
                "PATCH",
                f"/ev/events/{name}",
                {"json": {"extends": f"/ev/events/{names[(n + 1) % len(names)]}"}},
            )
            for n, name in enumerate(names)
        ]
        statuses = [r.status_code for r in _at_once(calls)]
        assert set(statuses) <= {200, 400} and 400 in statuses, statuses
        stored = {
            name: httpx.get(f"{two_servers[1]}/ev/events/{name}").json().get("extends")
            for name in names
        }
        assert all(_chain_ends(stored, name) for name in names), stored
        for name in names:  # detach every one for the next round
            detached = httpx.patch(
                f"{two_servers[0]}/ev/events/{name}", json={"extends": None, **EVENT}
            )
            assert detached.status_code == 200, detached.text


def _worker(env: dict[str, str], record: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "datastore.cli", "worker", str(BLUEPRINTS / "codehooks.yaml")]
    command += ["--space", "hooks", "--handler", f"emails={record}", "--poll-interval", "0.05"]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def test_jobs_through_both_servers_are_claimed_once(
    two_servers: list[str], servers_database_url: str, database_of_servers: Database, tmp_path: Path
) -> None:
    from datastore.auth.apikeys import ApiKeyStore

    _, key = ApiKeyStore(database_of_servers).add("hooks", readonly=False)
    done = tmp_path / "done.txt"
    env = _environment(servers_database_url)
    workers = [_worker(env, "tests.queue.handlers:record", tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        calls = [
            (url, "POST", "/hooks/queue/emails", {"json": {"file": str(done), "n": n}})
            for n, url in zip(range(60), itertools.cycle(two_servers), strict=False)
        ]
        for call in calls:
            call[3]["headers"] = {"x-apikey": key}
        assert {r.status_code for r in _at_once(calls)} == {201}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if done.exists() and len(done.read_text().splitlines()) >= 60:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # a job claimed twice would be recorded twice by now
        assert sorted(int(n) for n in done.read_text().split()) == list(range(60))
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=15)
