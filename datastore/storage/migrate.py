"""Running the Alembic migrations of the datastore's tables (``datastore migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from datastore.storage.dialects import dialect_of
from datastore.storage.engine import Database


def _migrations_folder() -> Path:
    """The Alembic scripts: ``datastore/migrations`` in an installed wheel (``setup.py`` maps
    the repository's top-level ``migrations/`` there); that folder itself in a checkout or an
    editable install."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "migrations"
    return installed if (installed / "env.py").is_file() else package.parent / "migrations"


MIGRATIONS = _migrations_folder()


def alembic_config(db: Database) -> Config:
    """An Alembic config for this database (scripts from the migrations folder)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply every pending migration (idempotent). Safe when several workers start at once:
    one migrates at a time (PostgreSQL: an advisory lock; SQLite: its write lock, taken
    before Alembic reads the revision), and the others then find nothing to do."""
    config = alembic_config(db)
    if revision == "head" and current_revision(db) == head_revision(db):
        return  # no lock taken on an ordinary start
    with db.schema_change() as conn:
        # One migrator at a time when several workers start together.
        dialect_of(conn).lock_transaction(conn, MIGRATE_LOCK)
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


MIGRATE_LOCK = 7413001
"""The transaction lock migrations take (as every earlier version did)."""


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()
