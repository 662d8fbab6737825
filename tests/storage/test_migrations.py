"""Migrations: upgrade from empty on both backends, idempotent, and in step with tables.py."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from datastore.storage import migrate
from datastore.storage.engine import Database
from datastore.storage.tables import metadata


def _postgres_only(diff: object) -> bool:
    """On SQLite the PostgreSQL-only GIN index is (rightly) absent."""
    index = diff[1] if isinstance(diff, tuple) and len(diff) > 1 else None
    return diff[0] == "add_index" and getattr(index, "name", "") == "ix_documents_body_gin"  # type: ignore[index]


def test_upgrade_from_empty_matches_the_tables(database_url: str, tmp_path: Path) -> None:
    url = database_url
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    db = Database(url)
    try:
        if db.is_postgresql:
            # The session database is already migrated; check it is at head and in step.
            assert migrate.current_revision(db) == migrate.head_revision(db)
        else:
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
