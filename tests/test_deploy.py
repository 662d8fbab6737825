"""deploy/: the gunicorn config really serves; the other files parse and name real commands."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.live import free_port, gunicorn_environment, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def test_gunicorn_with_two_uvicorn_workers(tmp_path: Path) -> None:
    port = free_port()
    env = gunicorn_environment(f"sqlite:///{tmp_path / 'g.sqlite3'}", port)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url)
        created = httpx.post(
            f"{url}/events", json={"name": "g", "eventDate": "2026-01-01T00:00:00Z"}
        )
        assert created.status_code == 201
        assert created.headers["x-request-id"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_server_factory_hides_start_up_objects_from_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker builds at start-up lives as long as the worker: frozen, a full collection
    does not walk it (it took 50-100 ms a time with the benchmark's blueprint)."""
    from datastore.asgi import application

    monkeypatch.setenv("DATASTORE_BLUEPRINT", str(ROOT / "blueprints" / "events.yaml"))
    monkeypatch.setenv("DATASTORE_DATABASE_URL", f"sqlite:///{tmp_path / 'f.sqlite3'}")
    level = logging.getLogger("datastore").level  # the factory sets it from the settings
    gc.unfreeze()
    try:
        app = application()
        assert gc.get_freeze_count() > 10_000
        assert gc.is_tracked(app)
        assert not any(seen is app for seen in gc.get_objects())  # frozen: out of sight
    finally:
        gc.unfreeze()
        logging.getLogger("datastore").setLevel(level)


def test_container_and_compose_files_name_real_commands() -> None:
    from datastore.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        command = service.get("command")
        if command and command[0] == "datastore":
            assert command[1] in commands, name
        if command and command[0] == "gunicorn":
            assert (ROOT / command[2]).exists(), name
    container = (DEPLOY / "Containerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]' in container
    unit = (DEPLOY / "datastore.service").read_text()
    assert "datastore migrate" in unit and "gunicorn -c" in unit
