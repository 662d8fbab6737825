"""The data browser's load time on a blueprint with 50 collections (20 documents each), in
headless Chromium driven by Selenium (needs ``chromium``, ``chromedriver`` and the ``selenium``
package of the test extra).

"Loaded" is the page's own mark: ``document.body.dataset.ready``, set once every space's
``/openapi.json`` is read, the tree is drawn and every collection's count has arrived (50
counting requests), in milliseconds since navigation started. Then the time to open one
collection's table (a hash change until its rows are drawn).

    python -m bench.admin [--runs 20] [--backend sqlite,postgresql] [--collections 50]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from typing import Any

import httpx

from bench.common import database
from datastore.app import ServedBlueprint, create_app
from datastore.config import Settings
from tests.support.live import live_server

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "x-datastore-source": "document.$id", "readOnly": True},
        "name": {"type": "string", "minLength": 1},
        "n": {"type": "integer"},
        "price": {"type": "number"},
        "active": {"type": "boolean"},
        "kind": {"type": "string", "enum": ["a", "b", "c"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"type": ["string", "null"]},
    },
    "required": ["name"],
}


def blueprint(collections: int) -> dict[str, Any]:
    """``collections`` collections, each with its listing, create, and document operations."""
    body = {"required": True, "content": {"application/json": {"schema": SCHEMA}}}
    one = {"200": {"description": "ok", "content": {"application/json": {"schema": SCHEMA}}}}
    many = {
        "200": {
            "description": "ok",
            "content": {"application/json": {"schema": {"type": "array", "items": SCHEMA}}},
        }
    }
    paths: dict[str, Any] = {}
    for n in range(collections):
        param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
        public = {"x-datastore-acl": "public"}
        paths[f"/things{n:02}"] = {
            "get": {**public, "responses": many},
            "post": {**public, "requestBody": body, "responses": {"201": one["200"]}},
        }
        paths[f"/things{n:02}/{{id}}"] = {
            "parameters": param,
            "get": {**public, "responses": one},
            "put": {**public, "requestBody": body, "responses": one},
            "patch": {**public, "requestBody": body, "responses": one},
            "delete": {**public, "responses": {"204": {"description": "gone"}}},
        }
    return {"openapi": "3.1.0", "info": {"title": "bench", "version": "1"}, "paths": paths}


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(driver), options=options)


def wait(driver: Any, script: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.002)
    raise RuntimeError(f"timed out: {script}")


def run(backend: str, runs: int, collections: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"first load": [], "load": [], "open a table": []}
    with database(backend) as db:
        app = create_app(
            Settings(migrate=False, dev=True),
            [ServedBlueprint("default", blueprint(collections))],
            database=db,
        )
        with live_server(app) as url, httpx.Client(base_url=url) as client:
            for n in range(collections):
                for i in range(20):
                    doc = {"name": f"thing {i}", "n": i, "price": i / 4, "kind": "abc"[i % 3]}
                    client.put(f"/things{n:02}/t{i:02}", json=doc).raise_for_status()
            driver = browser()
            try:
                for attempt in range(runs + 1):
                    driver.get(f"{url}/__admin")
                    ready = float(wait(driver, "return document.body.dataset.ready"))
                    results["first load" if attempt == 0 else "load"].append(ready)
                    started = time.perf_counter()
                    driver.execute_script("location.hash = '#/default/c/things25'")
                    wait(
                        driver,
                        "return document.querySelectorAll('#documents tbody tr[data-id]')"
                        ".length === 10",
                    )
                    results["open a table"].append((time.perf_counter() - started) * 1000)
            finally:
                driver.quit()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--collections", type=int, default=50)
    args = parser.parse_args()
    print(f"data browser, {args.collections} collections x 20 documents, {args.runs} loads")
    print(f"{'backend':<11} {'measure':<13} {'median ms':>9} {'p95 ms':>7} {'max ms':>7}")
    for backend in args.backend.split(","):
        for name, values in run(backend, args.runs, args.collections).items():
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            print(
                f"{backend:<11} {name:<13} {statistics.median(values):>9.0f} "
                f"{p95:>7.0f} {max(values):>7.0f}"
            )


if __name__ == "__main__":
    main()
