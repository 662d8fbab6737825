"""A streaming read replica (``read_database``) with read-your-writes: listings read from the
replica; a write's ``X-Datastore-Consistency`` token sent back makes a read wait for the
replica to replay it, then fall back to the primary; a stopped replica costs no errors."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench import replication
from datastore.client import Client
from datastore.config import ConfigError, load_settings
from datastore.storage import migrate
from datastore.storage.engine import Database
from tests.http.test_documents import EVENT
from tests.support.client import CheckedClient, serve

HEADER = "X-Datastore-Consistency"


@pytest.fixture(scope="module")
def pair() -> Iterator[replication.Pair]:
    problem = replication.missing()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"a read replica is required under CI: {problem}")
        pytest.skip(f"read replica tests skipped: {problem}")
    with replication.replicated_pair() as running:
        yield running


@pytest.fixture(scope="module")
def replicated(pair: replication.Pair) -> Iterator[Database]:
    """The pair's primary, migrated, with its replica as the read database."""
    db = Database(pair.primary_url, read_url=pair.replica_url)
    assert db.replica is not None
    db.replica.down_seconds = 0.2  # tried again soon after a test restarts it
    migrate.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def events(replicated: Database, space: str) -> Iterator[CheckedClient]:
    with serve(replicated, space, "events.yaml") as client:
        yield client


def replica_sql(pair: replication.Pair, sql: str) -> Any:
    engine = sa.create_engine(pair.replica_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


def wait_for_replay(pair: replication.Pair, token: str) -> None:
    deadline = time.monotonic() + 10
    while not replica_sql(pair, f"SELECT pg_last_wal_replay_lsn() >= '{token}'::pg_lsn"):
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.02)


@pytest.fixture
def paused(pair: replication.Pair) -> Iterator[None]:
    """The replica stops replaying (it lags behind every later write)."""
    replica_sql(pair, "SELECT pg_wal_replay_pause()")
    deadline = time.monotonic() + 10
    while replica_sql(pair, "SELECT pg_get_wal_replay_pause_state()") != "paused":
        assert time.monotonic() < deadline, "replay did not pause"
        time.sleep(0.02)
    try:
        yield
    finally:
        replica_sql(pair, "SELECT pg_wal_replay_resume()")


def listed(events: CheckedClient, **headers: str) -> set[str]:
    response = events.get("/events", headers=headers)
    assert response.status_code == 200, response.text
    return {doc["id"] for doc in response.json()}


def test_writes_hand_out_tokens_and_reads_see_them(
    events: CheckedClient, pair: replication.Pair, request: pytest.FixtureRequest
) -> None:
    first = events.put("/events/e1", json=EVENT)
    assert first.status_code == 201
    token = first.headers[HEADER]
    wait_for_replay(pair, token)
    request.getfixturevalue("paused")
    second = events.put("/events/e2", json=EVENT)
    later = second.headers[HEADER]
    assert listed(events) == {"e1"}  # the lagging replica answered
    assert listed(events, **{HEADER: token}) == {"e1"}  # it has replayed that token
    began = time.monotonic()
    assert listed(events, **{HEADER: later}) == {"e1", "e2"}  # waited, then the primary
    assert time.monotonic() - began >= 0.4
    assert listed(events, **{HEADER: "not-a-position"}) == {"e1", "e2"}  # the primary
    # single documents as listings: what the replica has, or what the token asks for
    assert events.get("/events/e2").status_code == 404
    assert events.get("/events/e2", headers={HEADER: later}).status_code == 200


def test_a_token_past_the_primary_is_not_waited_for(
    events: CheckedClient,
    replicated: Database,
    pair: replication.Pair,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forged token (past anything the primary wrote) would otherwise hold a replica
    connection and a worker thread for the whole wait on every request that sends it: it is
    answered by the primary without waiting for the replica."""
    written = events.put("/events/f1", json=EVENT)
    token = written.headers[HEADER]
    wait_for_replay(pair, token)
    request.getfixturevalue("paused")
    assert events.put("/events/f2", json=EVENT).status_code == 201
    assert replicated.replica is not None
    waits: list[str] = []
    real_wait = type(replicated.replica)._replayed

    def counted(self: Any, conn: Any, wanted: str) -> bool:
        waits.append(wanted)
        return real_wait(self, conn, wanted)

    monkeypatch.setattr(type(replicated.replica), "_replayed", counted)
    assert listed(events, **{HEADER: "FFFFFFFF/FFFFFFFF"}) == {"f1", "f2"}  # the primary
    assert listed(events, **{HEADER: "7FFF/0"}) == {"f1", "f2"}
    assert waits == []
    assert listed(events, **{HEADER: token}) == {"f1"}  # a real token still waits if needed
    assert waits and set(waits) == {token}


def test_positions_compare_as_numbers() -> None:
    from datastore.storage.replica import lsn_number

    assert lsn_number("0/16B3748") < lsn_number("0/A0000000") < lsn_number("1/0")
    assert lsn_number("16/B374D848") == 0x16B374D848


def test_refused_writes_hand_out_no_token(events: CheckedClient) -> None:
    refused = events.put("/events/bad", json={"name": 5})
    assert refused.status_code == 400
    assert HEADER not in refused.headers
    assert HEADER not in events.get("/events").headers


def test_a_stopped_replica_sends_reads_to_the_primary(
    events: CheckedClient, pair: replication.Pair
) -> None:
    assert events.put("/events/s1", json=EVENT).status_code == 201
    pair.stop_replica()
    try:
        for _ in range(10):
            assert listed(events) == {"s1"}
    finally:
        pair.start_replica()
    time.sleep(0.3)  # past down_seconds: the replica is tried again


def test_the_sdk_sends_the_last_write_token_back(
    events: CheckedClient, pair: replication.Pair, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue("paused")
    client = Client("", http=events.client)
    created = client.collection("events").add(EVENT)
    assert client.consistency is not None
    ids = [doc["id"] for doc in client.collection("events").get()]
    assert ids == [created["id"]]  # read its own write while the replica lags
    client.consistency = None
    assert client.collection("events").get() == []  # the lagging replica


def test_a_read_database_needs_a_postgresql_primary() -> None:
    with pytest.raises(ConfigError, match="read_database"):
        load_settings(
            environ={
                "DATASTORE_DATABASE_URL": "sqlite:///x.sqlite3",
                "DATASTORE_READ_DATABASE": "postgresql://replica/db",
            }
        )


SDK_PAGE = """<!doctype html><html><body><pre id="out">running</pre><script type="module">
const api = new URLSearchParams(location.search).get("api");
const { Datastore } = await import(api + "/__sdk/datastore.js");
const out = {};
try {
  const ds = new Datastore({serviceURL: api});
  const events = ds.collection("events");
  out.created = (await events.add(EVENT)).id;
  out.token = ds.consistency;
  out.listed = (await events.get()).map(d => d.id);
  ds.consistency = null;
  out.lagging = (await events.get()).map(d => d.id);
} catch (e) { out.error = String(e); }
document.getElementById("out").textContent = JSON.stringify(out);
</script></body></html>"""


def test_the_browser_sdk_sends_the_token_back_across_origins(
    replicated: Database, space: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The token header is exposed to a page on another origin (CORS), and the SDK sends it
    back: the page reads its own write while the replica lags."""
    from datastore.app import create_app, serve_blueprint_file
    from datastore.config import Settings
    from tests.support.client import BLUEPRINTS
    from tests.support.live import live_server
    from tests.test_browser import CHROMIUM, chromium, static_page

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed")
    request.getfixturevalue("paused")
    with static_page(SDK_PAGE.replace("EVENT", json.dumps(EVENT))) as origin:
        app = create_app(
            Settings(migrate=False, cors_origin=origin),
            [serve_blueprint_file(BLUEPRINTS / "events.yaml", space)],
            database=replicated,
        )
        with live_server(app) as api:
            dom = chromium(f"{origin}/?api={api}", tmp_path, "--dump-dom")
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert found, dom[-500:]
    out = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert "error" not in out, out["error"]
    assert out["token"] and out["listed"] == [out["created"]]
    assert out["lagging"] == []  # without the token: the paused replica
