"""Several workers on one SQLite file (issue 19): gunicorn with two workers starts on a new
file with no `datastore migrate` step (both workers migrate and build the indexes at once),
serves a concurrent mix of creates, increments, deletes and listings without a 5xx, is killed
with SIGKILL mid-load, and after a restart every acknowledged write is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.support.live import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = """\
openapi: 3.0.3
info: {title: workers, version: "1"}
paths:
  /items:
    x-datastore-indexes: [owner, n]
    get: {x-datastore-acl: public, responses: {"200": {description: ok}}}
  /items/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get: {x-datastore-acl: public, responses: {"200": {description: ok}}}
    put: {x-datastore-acl: public, responses: {"200": {description: ok}}}
    patch: {x-datastore-acl: public, responses: {"200": {description: ok}}}
    delete: {x-datastore-acl: public, responses: {"204": {description: gone}}}
"""
THREADS = 6
COUNTER = "shared-counter"


def start(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATASTORE_BLUEPRINT": str(tmp_path / "workers.yaml"),
        "DATASTORE_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.sqlite3'}",
        "DATASTORE_BIND": f"127.0.0.1:{port}",
        "DATASTORE_WORKERS": "2",
        "DATASTORE_MIGRATE": "true",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class Load:
    """What the clients were told: acknowledged creates, deletes and increments, and every
    answer of 500 or more."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.deleting: set[str] = set()
        self.increments = 0
        self.attempted_increments = 0
        self.failures: list[str] = []
        self.statuses: Counter[int] = Counter()

    def run(self, url: str, worker: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    self.step(client, worker, n)
                except httpx.HTTPError:
                    continue  # the server was killed mid-request

    def step(self, client: httpx.Client, worker: int, n: int) -> None:
        doc_id = f"w{worker}-{n}"
        answer = client.put(f"/items/{doc_id}", json={"key": doc_id, "owner": f"w{worker}", "n": n})
        if self.answered(answer, 200, 201):
            with self.lock:
                self.created.add(doc_id)
        with self.lock:
            self.attempted_increments += 1
        answer = client.patch(f"/items/{COUNTER}", json={"$inc": {"n": 1}})
        if self.answered(answer, 200):
            with self.lock:
                self.increments += 1
        if n % 3 == 0:
            gone = f"w{worker}-{n - 1}"
            with self.lock:
                self.deleting.add(gone)  # cut off by the kill, it may have happened
            if self.answered(client.delete(f"/items/{gone}"), 204):
                with self.lock:
                    self.deleted.add(gone)
        listed = client.get(
            "/items", params={"q": f'{{"owner": "w{worker}"}}', "sort": "-n", "limit": 5}
        )
        self.answered(listed, 200)

    def answered(self, response: httpx.Response, *ok: int) -> bool:
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500:
                retry = response.headers.get("retry-after")
                self.failures.append(f"{response.status_code} {retry} {response.text[:200]}")
        return response.status_code in ok


def stored_ids(url: str) -> dict[str, dict[str, Any]]:
    """Every stored item, read in keyset pages (which use the items' sort index)."""
    found: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        page = "/items?page[size]=200&sort=%2Bdocument.n"
        while page:
            answer = client.get(page)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            found.update({doc["key"]: doc for doc in body["data"]})
            page = body["links"].get("next")
    return found


def test_two_workers_on_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    (tmp_path / "workers.yaml").write_text(BLUEPRINT)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(tmp_path, port)  # a new file: both workers migrate and index at once
    load = Load()
    try:
        wait_until_healthy(url, seconds=60)
        assert httpx.put(
            f"{url}/items/{COUNTER}", json={"key": COUNTER, "owner": "none", "n": 0}
        ).status_code in (
            200,
            201,
        )
        threads = [threading.Thread(target=load.run, args=(url, w)) for w in range(THREADS)]
        for thread in threads:
            thread.start()
        time.sleep(4.0)
        os.killpg(server.pid, signal.SIGKILL)  # master and both workers, mid-load
        server.wait(timeout=10)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=70)
        assert load.failures == [], load.failures[:5]
        assert len(load.created) > 30, f"the load did not get going: {load.statuses}"

        server = start(tmp_path, port)
        wait_until_healthy(url, seconds=60)
        stored = stored_ids(url)
        missing = sorted(load.created - load.deleting - stored.keys())
        assert missing == [], f"acknowledged creates lost: {missing[:10]}"
        resurrected = sorted(load.deleted & stored.keys())
        assert resurrected == [], f"acknowledged deletes undone: {resurrected[:10]}"
        counted = stored[COUNTER]["n"]
        assert load.increments <= counted <= load.attempted_increments, (
            load.increments,
            counted,
            load.attempted_increments,
        )
        print(f"{load.statuses}; {len(load.created)} creates, counter at {counted}")
    finally:
        load.stop.set()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
