"""``serve`` remembers each distinct blueprint; ``diff --against-database`` compares with it."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datastore.app import create_app, serve_blueprint_file
from datastore.config import load_settings
from datastore.evolve.served import remember, served_text
from datastore.storage.engine import Database
from datastore.storage.served import ServedBlueprints, blueprint_hash
from tests.evolve.test_cli_evolve import ROOT, run

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_each_distinct_blueprint_is_recorded_once(database: Database, space: str) -> None:
    store = ServedBlueprints(database)
    assert store.last(space) is None
    assert store.record(space, "one", NOW) == (True, None)
    changed, last = store.record(space, "one", NOW + timedelta(seconds=1))
    assert not changed
    assert last is not None
    assert (last.hash, last.text) == (blueprint_hash("one"), "one")
    changed, previous = store.record(space, "two", NOW + timedelta(seconds=2))
    assert changed
    assert previous is not None
    assert previous.text == "one"
    changed, previous = store.record(space, "one", NOW + timedelta(seconds=3))  # a revert
    assert changed
    assert previous is not None
    assert previous.text == "two"
    last = store.last(space)
    assert last is not None
    assert (last.text, last.first_served_at, last.last_served_at) == (
        "one",
        NOW,
        NOW + timedelta(seconds=3),
    )
    assert store.last(space + "x") is None


def test_workers_starting_at_once_record_a_change_once(database: Database, space: str) -> None:
    store = ServedBlueprints(database)
    store.record(space, "old", datetime.now(UTC) + timedelta(hours=1))  # a clock ahead
    results: list[bool] = []
    start = threading.Barrier(6)

    def worker() -> None:
        start.wait()
        results.append(store.record(space, "new", datetime.now(UTC))[0])

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]


def test_a_changed_blueprint_is_logged_once_with_its_breaking_changes(
    database: Database, space: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("datastore.test_served")
    before = serve_blueprint_file(ROOT / "blueprints" / "events.yaml").document
    after = serve_blueprint_file(ROOT / "blueprints" / "events.yaml").document
    after["components"]["schemas"]["event"]["required"].append("category")
    with caplog.at_level(logging.INFO, logger="datastore.test_served"):
        remember(database, [(space, before)], logger)
        remember(database, [(space, before)], logger)
        assert caplog.records == []
        remember(database, [(space, after)], logger)
        remember(database, [(space, after)], logger)
    [line] = [r.getMessage() for r in caplog.records]
    assert f"the blueprint of space {space} changed since it was last served" in line
    assert ": 1 breaking, 1 data, 0 access, 0 compatible" in line
    last = ServedBlueprints(database).last(space)
    assert last is not None
    assert last.text == served_text(after)


def test_serve_records_and_diff_compares_against_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'served.sqlite3'}"
    settings = load_settings(environ={"DATASTORE_DATABASE_URL": url})
    create_app(settings, [serve_blueprint_file(ROOT / "blueprints" / "events.yaml")])
    db = Database(url)
    try:
        assert ServedBlueprints(db).last("default") is not None
    finally:
        db.dispose()
    events = ROOT / "blueprints" / "events.yaml"
    same = run("diff", "--against-database", url, str(events))
    assert (same.returncode, same.stdout) == (0, "no changes\n")
    edited = tmp_path / "events.yaml"
    edited.write_text(
        events.read_text().replace("x-datastore-acl: public", "x-datastore-acl: jwt.a", 1)
    )
    (tmp_path / "schemas").symlink_to(ROOT / "blueprints" / "schemas")
    changed = run("diff", "--against-database", url, str(edited))
    assert changed.returncode == 1
    assert "access tightened: GET /events" in changed.stdout
    assert run("diff", "--against-database", url, "--space", "nope", str(edited)).returncode == 2
    assert run("diff", "--against-database", url, str(events), str(edited)).returncode == 2
    assert run("diff", str(edited)).returncode == 2
