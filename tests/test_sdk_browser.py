"""The browser SDK in headless Chromium: a page on another origin (CORS) imports it from the
datastore and exercises every method against a live server."""

from __future__ import annotations

import http.server
import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from datastore import __version__
from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS
from tests.support.live import live_server
from tests.test_browser import chromium, pytestmark, static_page  # noqa: F401

PAGE = (Path(__file__).parent / "sdk_page.html").read_text()
"""Exercises every SDK method and writes what it saw into #out as JSON."""


def test_sdk_is_served_with_its_version(database: Database, space: str) -> None:
    app = create_app(
        Settings(migrate=False),
        [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
        database=database,
    )
    with TestClient(app) as client:
        response = client.get("/__sdk/datastore.js")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert f"v{__version__}" in response.text.splitlines()[0]
        assert "max-age" in response.headers["cache-control"]
        cached = client.get(
            "/__sdk/datastore.js", headers={"If-None-Match": response.headers["etag"]}
        )
        assert cached.status_code == 304


def test_every_sdk_method_in_a_browser(database: Database, space: str, tmp_path: Path) -> None:
    with static_page(PAGE) as origin:
        app = create_app(
            Settings(migrate=False, dev=True, cors_origin=origin),
            [serve_blueprint_file(BLUEPRINTS / "multi-user.yaml", space)],
            database=database,
        )
        with live_server(app) as api:
            dom = chromium(f"{origin}/?api={api}", tmp_path, "--dump-dom")
    match = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert match, dom[-500:]
    out = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert "error" not in out, out["error"]
    assert out["first"] == ["p1", "p2"] and out["firstHasPrev"] is False
    assert out["all"] == ["p1", "p2", "p3", "p4", "p5"]
    assert out["back"] == ["p3", "p4"]
    assert out["filtered"] == ["p3"] and out["queried"] == ["p2"]
    assert (out["updated"], out["read"], out["afterDelete"]) == ("changed", "changed", 404)
    assert out["roundTrip"] == "round trip" and out["readOnly"] == [400, ["created"]]
    assert out["invalid"] == [True, 400, ["title"]]
    assert out["forbidden"] == [403, "Forbidden"]
    assert out["notes"] == ["hello"]
    assert out["refreshed"] == 1 and out["tokenFetches"] == 2


def test_the_example_page_lists_posts(database: Database, space: str, tmp_path: Path) -> None:
    import httpx

    from datastore.auth.credentials import mint_token
    from datastore.config import DEV_SECRET

    page = (Path(__file__).resolve().parents[1] / "docs" / "examples" / "posts.html").read_text()
    with static_page(page) as origin:
        app = create_app(
            Settings(migrate=False, dev=True, cors_origin=origin),
            [serve_blueprint_file(BLUEPRINTS / "multi-user.yaml", space)],
            database=database,
        )
        with live_server(app) as api:
            token = mint_token({"sub": "ann"}, secret=DEV_SECRET)
            for title in ("first post", "second post"):
                httpx.post(
                    f"{api}/posts",
                    json={"ownerId": "ann", "title": title, "published": True},
                    headers={"Authorization": f"Bearer {token}"},
                )
            dom = chromium(f"{origin}/?api={api}", tmp_path, "--dump-dom")
    assert "<b>second post</b>" in dom and "<b>first post</b>" in dom


CHANGES_PAGE = (Path(__file__).parent / "changes_page.html").read_text()
"""Subscribes to /posts, lists what arrives (``collection.subscribe``) and posts its findings
to ``/result`` of the page's own server."""


@contextmanager
def reporting_page(body: str) -> Iterator[tuple[str, queue.Queue[str]]]:
    """A page served on 127.0.0.1 that may POST its findings to ``/result`` (a queue)."""
    results: queue.Queue[str] = queue.Queue()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            results.put(self.rfile.read(length).decode())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", results
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_updates_when_another_client_writes(
    database: Database, space: str, tmp_path: Path
) -> None:
    """Real time, not Chromium's virtual time: the page waits on an open event stream."""
    from datastore.auth.credentials import mint_token
    from datastore.config import DEV_SECRET
    from tests.test_browser import CHROMIUM

    assert CHROMIUM is not None
    with reporting_page(CHANGES_PAGE) as (origin, results):
        app = create_app(
            Settings(migrate=False, dev=True, cors_origin=origin),
            [serve_blueprint_file(BLUEPRINTS / "multi-user.yaml", space)],
            database=database,
        )
        streams = threading.Event()

        async def watching(scope: Any, receive: Any, send: Any) -> None:
            headers = dict(scope.get("headers") or [])
            if scope["type"] == "http" and b"text/event-stream" in headers.get(b"accept", b""):
                streams.set()
            await app(scope, receive, send)

        with live_server(watching) as api:
            browser = subprocess.Popen(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    f"{origin}/?api={api}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                assert streams.wait(60), "the page never opened its event stream"
                time.sleep(0.5)
                token = mint_token({"sub": "writer"}, secret=DEV_SECRET)
                body = {"ownerId": "writer", "title": "from another client", "published": True}
                written = httpx.post(
                    f"{api}/posts", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert written.status_code == 201, written.text
                out = json.loads(results.get(timeout=30))
            finally:
                browser.kill()
                browser.wait()
    assert "error" not in out, out["error"]
    assert out["events"] == [["created", "from another client"]]
    assert out["listed"] == ["from another client"]
