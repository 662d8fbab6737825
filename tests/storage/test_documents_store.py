"""The document store contract: one suite, both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from datastore.storage.documents import DocumentStore
from datastore.storage.engine import Database

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_insert_get_update_delete(database: Database, space: str) -> None:
    store = DocumentStore()
    with database.write() as conn:
        doc = store.insert(conn, space, "events", "e1", {"a": 1, "n": {"x": [1, "2"]}}, NOW)
        assert doc is not None
        assert (doc.version, doc.created_at, doc.body) == (1, NOW, {"a": 1, "n": {"x": [1, "2"]}})
        assert store.insert(conn, space, "events", "e1", {}, NOW) is None
    with database.read() as conn:
        fetched = store.get(conn, space, "events", "e1")
    assert fetched == doc
    later = NOW + timedelta(seconds=1)
    with database.write() as conn:
        updated = store.update(conn, space, doc, {"a": 2}, later, extends="/events/base")
        assert updated is not None
        assert (updated.version, updated.updated_at, updated.extends) == (2, later, "/events/base")
        # A stale version does not overwrite.
        assert store.update(conn, space, doc, {"a": 3}, later, extends=None) is None
    with database.write() as conn:
        assert store.delete(conn, space, updated) == 1
        assert store.get(conn, space, "events", "e1") is None


def test_delete_cascades_to_sub_collections_only(database: Database, space: str) -> None:
    store = DocumentStore()
    with database.write() as conn:
        parent = store.insert(conn, space, "users", "u1", {}, NOW)
        store.insert(conn, space, "users", "u10", {}, NOW)
        store.insert(conn, space, "users/u1/events", "e1", {}, NOW)
        store.insert(conn, space, "users/u1/events/e1/notes", "n1", {}, NOW)
        store.insert(conn, space, "users/u10/events", "e1", {}, NOW)
        store.insert(conn, space, "users/u1_x/events", "e1", {}, NOW)
    assert parent is not None
    with database.write() as conn:
        assert store.delete(conn, space, parent) == 3
    with database.read() as conn:
        assert store.count(conn, space, "users/u10/events") == 1
        assert store.count(conn, space, "users/u1_x/events") == 1
        assert store.count(conn, space, "users") == 1


def test_spaces_are_isolated(database: Database, space: str) -> None:
    store = DocumentStore()
    other = space + "x"
    with database.write() as conn:
        store.insert(conn, space, "c", "1", {"mine": True}, NOW)
        store.insert(conn, other, "c", "1", {"mine": False}, NOW)
    with database.read() as conn:
        assert [d.body for d in store.find(conn, space, "c")] == [{"mine": True}]
        assert store.count(conn, other, "c") == 1


def test_list_is_in_creation_order(database: Database, space: str) -> None:
    store = DocumentStore()
    with database.write() as conn:
        for n in (3, 1, 2):
            store.insert(conn, space, "c", f"d{n}", {"n": n}, NOW)
    with database.read() as conn:
        assert [d.doc_id for d in store.find(conn, space, "c")] == ["d3", "d1", "d2"]
        assert [d.doc_id for d in store.find(conn, space, "c", limit=1, offset=1)] == ["d1"]


def test_unicode_and_large_values_round_trip(database: Database, space: str) -> None:
    store = DocumentStore()
    body = {"t": "żółw 🐢 \u2028", "big": 2**53, "neg": -0.5, "deep": {"a": [{"b": None}]}}
    with database.write() as conn:
        store.insert(conn, space, "c", "ü-id", body, NOW)
    with database.read() as conn:
        doc = store.get(conn, space, "c", "ü-id")
    assert doc is not None
    assert doc.body == body
