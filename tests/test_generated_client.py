"""A real generated client works against the published document (issue #16): openapi-python-client
generates a Python client from the served /openapi.json of blueprints/events.yaml, and the
client creates, filters, sorts, limits, pages and reads events, and reads the invalid-params of
a 400 (it parsed a bare 400 to None, and listings had no parameters, before)."""

from __future__ import annotations

import datetime
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from datastore.app import create_app, serve_blueprint_file
from datastore.config import Settings
from datastore.storage.engine import Database
from tests.support.client import BLUEPRINTS


def generate(document: dict[str, Any], where: Path) -> None:
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(where / "events_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_client_creates_filters_pages_and_reads_problems(
    database: Database, space: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database.is_postgresql:
        pytest.skip("one backend is enough to prove the client (PostgreSQL)")
    app = create_app(
        Settings(migrate=False),
        [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
        database=database,
    )
    with TestClient(app, base_url="http://testserver") as http:
        generate(http.get("/openapi.json").json(), tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        package = importlib.import_module("events_client")
        api = importlib.import_module("events_client.api.default")
        models = importlib.import_module("events_client.models")
        client = package.Client(base_url="http://testserver")
        client.set_httpx_client(http)

        post_events = importlib.import_module(f"{api.__name__}.post_events")
        get_events = importlib.import_module(f"{api.__name__}.get_events")
        get_event = importlib.import_module(f"{api.__name__}.get_events_eventid")

        when = datetime.datetime(2030, 5, 1, 18, 0, tzinfo=datetime.UTC)
        created = []
        for n, category in enumerate(["music", "film", "music", "music", "talk"]):
            body = models.Event(
                name=f"event {n}",
                event_date=when,
                category=models.EventCategory(category),
                capacity=10 * (n + 1),
            )
            event = post_events.sync(client=client, body=body)
            assert isinstance(event, models.Event), event
            created.append(event)

        music = get_events.sync(
            client=client,
            filters="document.category===music",
            sort="-document.capacity",
            limit=2,
        )
        assert [e.name for e in music] == ["event 3", "event 2"]

        first = get_events.sync(client=client, pagesize=2)
        assert [e.name for e in first.data] == ["event 0", "event 1"]
        after = parse_qs(urlsplit(first.links.next_).query)["page[after]"][0]
        second = get_events.sync(client=client, pagesize=2, pageafter=after)
        assert [e.name for e in second.data] == ["event 2", "event 3"]

        read = get_event.sync(client=client, eventid=created[4].id)
        assert isinstance(read, models.Event) and read.capacity == 50
        assert read.category == models.EventCategory.TALK

        bad = post_events.sync_detailed(
            client=client, body=models.Event(name="", event_date=when, capacity=0)
        )
        assert bad.status_code == 400
        problem = bad.parsed
        assert isinstance(problem, models.DatastoreProblem), problem
        reasons = {p.name: p.reason for p in problem.invalid_params}
        assert set(reasons) == {"name", "capacity"}, reasons
