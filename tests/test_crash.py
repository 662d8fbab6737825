"""Crash safety: gunicorn killed with SIGKILL in the middle of a load of creates, then
restarted: every write acknowledged with 2xx is there and intact, nothing else is half there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support.live import free_port, gunicorn_environment, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]


def gunicorn(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_acknowledged_writes_survive_sigkill(postgres_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = gunicorn_environment(postgres_url, port)
    url = f"http://127.0.0.1:{port}"
    server = gunicorn(env, tmp_path)
    acknowledged: dict[str, dict[str, object]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def load(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=5) as client:
            n = 0
            while not stop.is_set():
                n += 1
                doc_id = f"w{worker}-{n}"
                body = {
                    "name": doc_id,
                    "eventDate": "2026-01-01T00:00:00Z",
                    "cost": n,
                    "tags": [doc_id, f"{doc_id}-b", f"{doc_id}-c"],
                }
                try:
                    response = client.put(f"/events/{doc_id}", json=body)
                except httpx.HTTPError:
                    continue
                if 200 <= response.status_code < 300:
                    with lock:
                        acknowledged[doc_id] = body
                else:
                    errors.append(response.text[:200])

    try:
        wait_until_healthy(url)
        threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        os.killpg(server.pid, signal.SIGKILL)  # master and workers, mid-load
        server.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert len(acknowledged) > 50, f"the load did not get going: {errors[:3]}"
        print(f"{len(acknowledged)} acknowledged writes before SIGKILL")
        server = gunicorn(env, tmp_path)
        wait_until_healthy(url)
        with httpx.Client(base_url=url, timeout=10) as client:
            stored = {d["id"]: d for d in client.get("/events", params={"limit": 1000}).json()}
            while len(stored) % 1000 == 0 and stored:  # more pages
                page = client.get("/events", params={"limit": 1000, "offset": len(stored)}).json()
                if not page:
                    break
                stored.update({d["id"]: d for d in page})
        for doc_id, body in acknowledged.items():
            assert doc_id in stored, f"acknowledged {doc_id} is missing"
            got = stored[doc_id]
            assert (got["name"], got["cost"], got["tags"]) == (
                body["name"],
                body["cost"],
                body["tags"],
            )
        for doc_id, got in stored.items():  # nothing stored half: every document is whole
            assert got["tags"] == [doc_id, f"{doc_id}-b", f"{doc_id}-c"]
            assert got["name"] == doc_id
    finally:
        stop.set()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
