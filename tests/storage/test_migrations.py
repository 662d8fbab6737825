"""Migrations: upgrade from empty on both backends, idempotent, and in step with tables.py."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from datastore.storage import migrate
from datastore.storage.engine import Database
from datastore.storage.tables import metadata


def _postgres_only(diff: object) -> bool:
    """On SQLite the PostgreSQL-only GIN index is (rightly) absent."""
    if not isinstance(diff, tuple) or len(diff) < 2:
        return False
    return diff[0] == "add_index" and getattr(diff[1], "name", "") == "ix_documents_body_gin"


def test_upgrade_from_empty_matches_the_tables(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        assert migrate.current_revision(db) is None
        migrate.upgrade(db)
        migrate.upgrade(db)  # idempotent
        assert migrate.current_revision(db) == migrate.head_revision(db)
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = [d for d in compare_metadata(context, metadata) if not _postgres_only(d)]
        assert diff == []
    finally:
        db.dispose()


def test_workers_starting_together_on_a_new_sqlite_file(tmp_path: Path) -> None:
    """Several workers migrating and building indexes on one new SQLite file at the same
    moment (each its own Database, as each gunicorn worker is): one at a time does the work,
    none fails, and the others find it done."""
    import threading

    from datastore.storage.indexes import IndexSpec, ensure_indexes, index_names

    url = f"sqlite:///{tmp_path / 'together.sqlite3'}"
    specs = [IndexSpec("items", ("a",)), IndexSpec(None, ("b", "c"))]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        db = Database(url)
        try:
            start.wait()
            migrate.upgrade(db)
            ensure_indexes(db, specs)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    db = Database(url)
    try:
        assert migrate.current_revision(db) == migrate.head_revision(db)
        with db.read() as conn:
            names = {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
        assert set(index_names(specs)) <= names
    finally:
        db.dispose()


def test_lineage_rows_of_an_older_version_get_their_space(empty_url: str) -> None:
    """0006 adds ``space`` to the lineage table: rows written before it take their
    descendant's space."""
    db = Database(empty_url)
    try:
        migrate.upgrade(db, "0005_served_blueprints")
        with db.write() as conn:
            for doc_id, space in (("a", "s1"), ("b", "s1"), ("c", "s2"), ("d", "s2")):
                conn.execute(
                    sa.text(
                        "INSERT INTO documents (space, collection, doc_id, body, created_at,"
                        " updated_at, version) VALUES (:s, 'c', :d, '{}', :t, :t, 1)"
                    ),
                    {"s": space, "d": doc_id, "t": "2026-01-01T00:00:00+00:00"},
                )
            conn.execute(
                sa.text(
                    "INSERT INTO document_lineage (ancestor_pk, descendant_pk, depth)"
                    " SELECT a.pk, d.pk, 1 FROM documents a, documents d"
                    " WHERE (a.doc_id, d.doc_id) IN (('a', 'b'), ('c', 'd'))"
                )
            )
        migrate.upgrade(db)
        with db.read() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT d.doc_id, l.space FROM document_lineage l"
                    " JOIN documents d ON d.pk = l.descendant_pk ORDER BY d.doc_id"
                )
            ).all()
        assert [tuple(row) for row in rows] == [("b", "s1"), ("d", "s2")]
    finally:
        db.dispose()
