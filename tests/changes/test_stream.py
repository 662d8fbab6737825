"""``GET <collection>/_changes`` as Server-Sent Events against a real server: the format,
resuming with ``Last-Event-ID`` under concurrent writes (every change exactly once, in order),
token expiry, and shutdown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from datastore.app import create_app, serve_blueprint_file
from datastore.auth.credentials import mint_token
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS
from tests.support.live import live_server

SECRET = "changes-stream-secret-0123456789abcdef"


def auth(sub: str, seconds: float = 600, **claims: Any) -> dict[str, str]:
    claims = {"sub": sub, **claims}
    token = mint_token(claims, secret=SECRET, expires_in=timedelta(seconds=seconds))
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Event:
    id: str
    event: str
    data: str


def events(response: httpx.Response) -> Iterator[Event | None]:
    """The events of a stream as they come; None for each keep-alive comment."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield None
        elif not line:
            if "event" in fields:
                yield Event(fields.get("id", ""), fields["event"], fields.get("data", ""))
            fields = {}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@contextmanager
def server(database: Database, space: str, **settings: Any) -> Iterator[str]:
    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET, **settings),
        [serve_blueprint_file(BLUEPRINTS / "multi-user.yaml", space)],
        database=database,
    )
    with live_server(app) as url:
        yield url


def post(url: str, owner: str, title: str, **extra: Any) -> dict[str, Any]:
    body = {"ownerId": owner, "title": title, **extra}
    response = httpx.post(f"{url}/posts", json=body, headers=auth(owner))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def head(url: str) -> str:
    response = httpx.get(f"{url}/posts/_changes", headers=auth("u1"))
    cursor: str = response.json()["next"]
    return cursor


STREAM = {"Accept": "text/event-stream"}


def test_an_event_stream_carries_each_visible_change(database: Database, space: str) -> None:
    with server(database, space) as url:
        start = head(url)
        hidden = post(url, "u2", "draft")
        shown = post(url, "u2", "news", published=True)
        headers = {**auth("u1"), **STREAM}
        with httpx.stream(
            "GET", f"{url}/posts/_changes", params={"since": start}, headers=headers, timeout=10
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            got = next(e for e in events(response) if e is not None)
        assert got.event == "created"
        assert int(got.id) > int(start)
        assert shown["id"] in got.data and hidden["id"] not in got.data
        shown_by_get = httpx.get(f"{url}/posts/{shown['id']}", headers=auth("u1")).json()
        assert shown_by_get == json.loads(got.data)


def test_keep_alive_comments_flow_while_idle(database: Database, space: str) -> None:
    with server(database, space, changes_keepalive_seconds=1) as url:
        headers = {**auth("u1"), **STREAM}
        with httpx.stream("GET", f"{url}/posts/_changes", headers=headers, timeout=10) as response:
            began = time.monotonic()
            assert next(events(response)) is None
            assert time.monotonic() - began < 3


def test_an_expired_token_ends_the_stream(database: Database, space: str) -> None:
    with server(database, space) as url:
        headers = {**auth("u1", seconds=2), **STREAM}
        began = time.monotonic()
        with httpx.stream("GET", f"{url}/posts/_changes", headers=headers, timeout=10) as response:
            assert [e for e in events(response) if e is not None] == []
        assert 1 <= time.monotonic() - began < 6


def test_a_reconnected_subscriber_gets_every_change_once_in_order(
    database: Database, space: str
) -> None:
    """Writers keep writing while a subscriber reads a few events, drops the connection, and
    comes back with its last id, several times over."""
    total = 60
    with server(database, space) as url:
        start = head(url)
        written: list[str] = []
        lock = threading.Lock()

        def write(worker: int) -> None:
            for i in range(total // 3):
                doc = post(url, f"w{worker}", f"{worker}-{i}", published=True)
                with lock:
                    written.append(doc["id"])

        writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
        for thread in writers:
            thread.start()
        received: list[tuple[int, str]] = []
        last = start
        deadline = time.monotonic() + 60
        while len(received) < total and time.monotonic() < deadline:
            headers = {**auth("u1"), **STREAM, "Last-Event-ID": last}
            with httpx.stream(
                "GET", f"{url}/posts/_changes", headers=headers, timeout=10
            ) as response:
                taken = 0
                for event in events(response):
                    if event is None:
                        continue
                    received.append((int(event.id), json.loads(event.data)["id"]))
                    last = event.id
                    taken += 1
                    if taken == 7 or len(received) == total:
                        break  # the subscriber is killed mid-stream
        for thread in writers:
            thread.join()
    numbers = [n for n, _ in received]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert sorted(doc for _, doc in received) == sorted(written)


def test_shutting_down_ends_the_streams(database: Database, space: str) -> None:
    from datastore.changes.service import ChangeService

    app = create_app(
        Settings(migrate=False, jwt_secret=SECRET),
        [serve_blueprint_file(BLUEPRINTS / "multi-user.yaml", space)],
        database=database,
    )
    services: list[ChangeService] = []
    original = ChangeService.closing

    def spy(self: ChangeService) -> Any:
        services.append(self)
        return original(self)

    with pytest.MonkeyPatch.context() as patch, live_server(app) as url:
        patch.setattr(ChangeService, "closing", spy)
        ended = threading.Event()

        def follow() -> None:
            headers = {**auth("u1"), **STREAM}
            with httpx.stream("GET", f"{url}/posts/_changes", headers=headers, timeout=30) as r:
                for _ in r.iter_lines():
                    pass
            ended.set()

        reader = threading.Thread(target=follow)
        reader.start()
        while not services:
            time.sleep(0.05)
        services[0].shut_down_soon()  # what SIGTERM does (signals.py)
        assert ended.wait(5)
        reader.join()


def test_sigterm_ends_open_streams_and_the_server(database_url: str, database: Database) -> None:
    """A real uvicorn process with an open event stream stops promptly on SIGTERM (uvicorn
    alone would wait for the stream to finish, that is forever)."""
    if not database.is_postgresql:
        pytest.skip("the shutdown does not depend on the backend: PostgreSQL run only")
    import os
    import signal
    import subprocess
    import sys

    from tests.support.live import free_port, wait_until_healthy

    port = free_port()
    root = BLUEPRINTS.parent
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DATASTORE_BLUEPRINT": str(BLUEPRINTS / "multi-user.yaml"),
        "DATASTORE_DATABASE_URL": database_url,
        "DATASTORE_MIGRATE": "false",
        "DATASTORE_JWT_SECRET": SECRET,
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "datastore.asgi:application"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url)
        opened, ended = threading.Event(), threading.Event()

        def follow() -> None:
            headers = {**auth("u1"), **STREAM}
            with httpx.stream("GET", f"{url}/posts/_changes", headers=headers, timeout=30) as r:
                for _ in r.iter_lines():
                    opened.set()
            ended.set()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert opened.wait(10)
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) is not None
        assert ended.wait(5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
