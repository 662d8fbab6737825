"""A database outage (the connection cut by a proxy): 503 with Retry-After during the outage,
recovery without restarting the app once the database is back."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
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


def test_outage_is_503_and_recovers(database: Database, space: str) -> None:
    if not database.is_postgresql or "127.0.0.1:5432" not in database.url:
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 to put a proxy in front of")
    with proxied(database.url) as (proxy, url):
        db = Database(url, pool_size=2)
        app = create_app(
            Settings(migrate=False),
            [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
            database=db,
        )
        with TestClient(app) as client:
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
        db.dispose()
