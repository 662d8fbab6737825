"""A database outage (the connection cut by a proxy): 503 with Retry-After during the outage,
recovery without restarting the app once the database is back."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.http.test_documents import EVENT
from tests.support.client import BLUEPRINTS


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut and restored on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with suppress(OSError):
                s.close()

    def cut(self) -> None:
        if self.listener is not None:
            with suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self.listener.close()
            self.listener = None
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.sockets.clear()


@contextmanager
def proxied(url: str) -> Iterator[tuple[Proxy, str]]:
    proxy = Proxy(("127.0.0.1", 5432))
    proxy.start()
    try:
        yield proxy, url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    finally:
        proxy.cut()


@contextmanager
def proxied_app(database: Database, space: str, *, pool_size: int) -> Iterator[tuple[Proxy, Any]]:
    """events.yaml served on a database reached through a proxy that can be cut (skips unless
    the database is PostgreSQL on 127.0.0.1:5432)."""
    if not database.is_postgresql or "127.0.0.1:5432" not in database.url:
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 to put a proxy in front of")
    with proxied(database.url) as (proxy, url):
        db = Database(url, pool_size=pool_size)
        try:
            yield (
                proxy,
                create_app(
                    Settings(migrate=False),
                    [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
                    database=db,
                ),
            )
        finally:
            db.dispose()


def test_outage_is_503_and_recovers(database: Database, space: str) -> None:
    with proxied_app(database, space, pool_size=2) as (proxy, app), TestClient(app) as client:
        assert client.get("/events").status_code == 200
        proxy.cut()
        down = client.get("/events")
        assert down.status_code == 503
        assert down.headers["retry-after"]
        assert down.json()["title"] == "Service Unavailable"
        assert client.get("/__health").status_code == 503
        proxy.start()  # the database is back, on the same address
        deadline = time.monotonic() + 10
        while client.get("/events").status_code != 200:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.2)
        assert client.get("/__health").status_code == 200


CLIENTS = 8


def test_outage_under_concurrent_load(database: Database, space: str) -> None:
    """Clients keep reading and writing through a real server (uvicorn) while the proxy cuts
    every PostgreSQL connection: during the outage every answer is a success or a 503
    problem with Retry-After (no other 5xx, no reset connection); once the proxy is back,
    answers succeed again within seconds, without restarting the app."""
    import httpx

    from tests.support.live import live_server

    phase = "before"
    answers: list[tuple[str, float, str, int, str, str]] = []  # phase, time, op, status, ...
    broken: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            n = 0
            while not stop.is_set():
                n += 1
                doc = f"c{number}-{n % 5}"
                try:
                    if n % 2:
                        op, response = "put", http.put(f"/events/{doc}", json={**EVENT, "cost": n})
                    else:
                        op, response = "get", http.get("/events", params={"limit": 5})
                except httpx.HTTPError as exc:  # a reset or refused connection: never allowed
                    with lock:
                        broken.append(f"{phase}: {exc!r}")
                    continue
                with lock:
                    answers.append(
                        (
                            phase,
                            time.monotonic(),
                            op,
                            response.status_code,
                            response.headers.get("content-type", ""),
                            response.headers.get("retry-after", ""),
                        )
                    )

    with proxied_app(database, space, pool_size=4) as (proxy, app), live_server(app) as base:
        threads = [
            threading.Thread(target=client, args=(n, base), daemon=True) for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        phase = "outage"
        proxy.cut()
        time.sleep(2.5)
        phase = "recovering"
        proxy.start()
        back = time.monotonic()
        time.sleep(4.0)
        phase = "after"
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)

    assert broken == [], broken[:5]
    by_phase: dict[str, list[tuple[str, float, str, int, str, str]]] = {}
    for answer in answers:
        by_phase.setdefault(answer[0], []).append(answer)
    assert all(200 <= a[3] < 300 for a in by_phase["before"]), "failures before the outage"
    outage = by_phase["outage"]
    unavailable = [a for a in outage if a[3] == 503]
    assert len(unavailable) > 20, f"the outage was not seen: {[a[3] for a in outage][:20]}"
    for _, _, op, status, content_type, retry_after in outage + by_phase["recovering"]:
        if 200 <= status < 300:
            continue
        assert status == 503, (op, status)
        assert content_type.startswith("application/problem+json"), content_type
        assert retry_after.isdigit(), retry_after
    recovered = [a[1] for a in by_phase["recovering"] if 200 <= a[3] < 300]
    assert recovered, "nothing succeeded after the database came back"
    assert recovered[0] - back < 3.0, f"took {recovered[0] - back:.1f} s to recover"
    after = by_phase["after"]
    assert after and all(200 <= a[3] < 300 for a in after), {a[3] for a in after}
    print(
        f"{len(answers)} answers: {len(outage)} during the outage ({len(unavailable)} 503), "
        f"first success {recovered[0] - back:.2f} s after the database came back"
    )
