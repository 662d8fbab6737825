"""Another process's write transaction on the same SQLite file (another gunicorn worker): a
write waits for it (queued in SQLite's busy handler), reads go on (WAL), and a write that
waits past the busy timeout is a 503 with ``Retry-After``, never a 500."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datastore.storage import engine, migrate
from datastore.storage.engine import Database
from tests.support.client import CheckedClient, serve

BLUEPRINT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "locked", "version": "1"},
    "paths": {
        "/items": {
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}}
        },
        "/items/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
            "put": {"x-datastore-acl": "public", "responses": {"200": {"description": "ok"}}},
        },
    },
}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, Database]]:
    """The served database and another process's connection to the same file, both with a
    short busy timeout (the real one is 30 s)."""
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 300)
    url = f"sqlite:///{tmp_path / 'locked.sqlite3'}"
    served, other = Database(url), Database(url)
    migrate.upgrade(served)
    try:
        yield served, other
    finally:
        served.dispose()
        other.dispose()


@pytest.fixture
def client(files: tuple[Database, Database]) -> Iterator[CheckedClient]:
    with serve(files[0], "locked", BLUEPRINT) as checked:
        yield checked


def test_a_write_waits_for_another_processes_write(
    files: tuple[Database, Database], client: CheckedClient
) -> None:
    held = threading.Event()

    def hold() -> None:
        with files[1].write() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS elsewhere (x)")
            held.set()
            time.sleep(0.15)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    answer = client.put("/items/a", json={"v": 1})
    holder.join()
    assert answer.status_code == 200, answer.text


def test_a_write_locked_out_past_the_busy_timeout_is_503_with_retry_after(
    files: tuple[Database, Database], client: CheckedClient
) -> None:
    assert client.put("/items/a", json={"v": 1}).status_code == 200
    with files[1].write() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS elsewhere (x)")
        refused = client.put("/items/b", json={"v": 2})
        read = client.get("/items/a")  # WAL: readers are not held up by the writer
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "locked" not in refused.text  # the driver's words stay in the log
    assert read.status_code == 200 and read.json() == {"v": 1}
    assert client.put("/items/b", json={"v": 2}).status_code == 200
