"""A real uvicorn server in a background thread, for tests that need true concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) and yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until_healthy(url: str, seconds: float = 30) -> None:
    """Poll ``url``/__health until it answers 200; raises RuntimeError after ``seconds``."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/__health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


def gunicorn_environment(database_url: str, port: int) -> dict[str, str]:
    """The environment of ``deploy/gunicorn.conf.py`` serving blueprints/events.yaml with two
    workers on ``port``, after migrating the database once (as production should)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DATASTORE_BLUEPRINT": str(root / "blueprints" / "events.yaml"),
        "DATASTORE_DATABASE_URL": database_url,
        "DATASTORE_BIND": f"127.0.0.1:{port}",
        "DATASTORE_WORKERS": "2",
    }
    subprocess.run(
        [sys.executable, "-m", "datastore.cli", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {**env, "DATASTORE_MIGRATE": "false"}
