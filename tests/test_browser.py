"""Headless Chromium against a live server: the API docs page lists the operations, and a page
on another origin can call the API only when CORS allows that origin."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS
from tests.support.live import live_server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and (os.environ.get("CI") or os.environ.get("DATASTORE_REQUIRE_BROWSER")):
    raise RuntimeError("headless Chromium is required here (.ci/run installs Debian's chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


def chromium(url: str, tmp_path: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


@contextmanager
def static_page(body: str) -> Iterator[str]:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


SCAFFOLD = ROOT / "datastore" / "scaffold" / "api.yaml"
DOCUMENTED = [*sorted(BLUEPRINTS.glob("*.yaml")), SCAFFOLD]


@pytest.mark.parametrize("blueprint", DOCUMENTED, ids=lambda p: p.name)
def test_api_docs_page_renders_the_operations(
    database: Database, space: str, tmp_path: Path, blueprint: Path
) -> None:
    """Swagger UI renders OpenAPI 3.0 and 3.1 alike (Swagger UI 4 showed "Unable to render
    this definition" for every 3.1 blueprint), from the package's own files."""
    if not database.is_postgresql:
        pytest.skip("the page does not depend on the backend: PostgreSQL run only")
    app = create_app(
        Settings(migrate=False, jwt_secret="s" * 32),
        [serve_blueprint_file(blueprint, space)],
        database=database,
    )
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
    with live_server(app) as url:
        dom = chromium(f"{url}/ui", tmp_path, "--dump-dom")
    assert "Unable to render this definition" not in dom
    assert "opblock-summary-path" in dom, dom[-600:]  # operations are rendered
    assert document["info"]["title"].split()[0] in dom
    for path, item in document["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "patch", "delete"):
                assert f'data-path="{path}"' in dom or path in dom, (method, path)


def test_api_docs_page_screenshot(database: Database, space: str, tmp_path: Path) -> None:
    """A screenshot of a 3.1 blueprint's page is big enough to be more than an error box."""
    if not database.is_postgresql:
        pytest.skip("the page does not depend on the backend: PostgreSQL run only")
    app = create_app(
        Settings(migrate=False),
        [serve_blueprint_file(BLUEPRINTS / "codehooks.yaml", space)],
        database=database,
    )
    screenshot = tmp_path / "ui.png"
    with live_server(app) as url:
        chromium(f"{url}/ui", tmp_path, f"--screenshot={screenshot}", "--window-size=1280,1000")
    assert screenshot.exists() and screenshot.stat().st_size > 30_000


def test_no_asset_comes_from_elsewhere(database: Database, space: str) -> None:
    app = create_app(
        Settings(migrate=False), [serve_blueprint_file(SCAFFOLD, space)], database=database
    )
    with TestClient(app) as client:
        page = client.get("/ui").text
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
            assert f'"/__ui/{name}"' in page
            assert client.get(f"/__ui/{name}").status_code == 200
        assert client.get("/__ui/LICENSE").status_code == 404
    assert "https://" not in page and "validatorUrl: null" in page


PAGE = """<!doctype html><html><body><div id="out">pending</div><script>
const api = new URLSearchParams(location.search).get("api");
fetch(api + "/events", {headers: {"If-None-Match": "\\"0\\""}})
  .then(r => r.json())
  .then(d => document.getElementById("out").textContent = "ok " + d.length)
  .catch(e => document.getElementById("out").textContent = "blocked " + e);
</script></body></html>"""


def test_cross_origin_fetch_obeys_cors(database: Database, space: str, tmp_path: Path) -> None:
    with static_page(PAGE) as allowed, static_page(PAGE) as other:
        app = create_app(
            Settings(migrate=False, cors_origin=allowed),
            [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
            database=database,
        )
        with live_server(app) as api:
            ok = chromium(f"{allowed}/?api={api}", tmp_path / "a", "--dump-dom")
            blocked = chromium(f"{other}/?api={api}", tmp_path / "b", "--dump-dom")
    assert '<div id="out">ok 0</div>' in ok, ok[-400:]
    assert "blocked" in blocked, blocked[-400:]
