"""The datastore's own tables (SQLAlchemy Core); Alembic's target metadata.

One set of tables serves every space: each row carries its ``space``. Documents are JSONB on
PostgreSQL (with a GIN index) and JSON text on SQLite. ``pk`` is a surrogate key that grows
with every insert, so it doubles as the creation order (and its tie-breaker).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from datastore.storage.dialects import dialect_for

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text in one fixed format, so
    text order is time order there too.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect_for(dialect.name).naive_datetimes:
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONText(sa.types.TypeDecorator[Any]):
    """Any JSON value as TEXT (SQLite): a column declared JSON has NUMERIC affinity there, which
    turns a stored scalar like ``12345678901234567890`` into a lossy REAL."""

    impl = sa.Text()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return orjson.dumps(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


BigPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit key that is SQLite's rowid alias on SQLite (so it autoincrements there)."""

JSONBody = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSONB on PostgreSQL, JSON text on SQLite (for objects only: see JSONText)."""

JSONValue = (
    sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(JSONText(), "sqlite")
)
"""Any JSON value, scalars included: JSONB on PostgreSQL, TEXT on SQLite."""

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("pk", BigPK, primary_key=True, autoincrement=True),
    sa.Column("space", sa.String(200), nullable=False),
    sa.Column("collection", sa.String(2000), nullable=False),
    sa.Column("doc_id", sa.String(1000), nullable=False),
    sa.Column("body", JSONBody, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("extends", sa.String(3000), nullable=True),
    sa.UniqueConstraint("space", "collection", "doc_id", name="uq_documents_path"),
    sa.Index("ix_documents_listing", "space", "collection", "pk"),
    sa.Index(
        "ix_documents_body_gin",
        "body",
        postgresql_using="gin",
        postgresql_ops={"body": "jsonb_path_ops"},
    ).ddl_if(dialect="postgresql"),
)
"""Every stored document: its place (space, collection path, id), body and bookkeeping."""

lineage = sa.Table(
    "document_lineage",
    metadata,
    sa.Column(
        "ancestor_pk",
        BigPK,
        sa.ForeignKey("documents.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "descendant_pk",
        BigPK,
        sa.ForeignKey("documents.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("depth", sa.Integer(), nullable=False),
    sa.Column("space", sa.String(200), nullable=False),
    sa.Index("ix_document_lineage_descendant", "descendant_pk", "depth"),
)
"""The ``$extends`` closure table: one row per (ancestor, descendant) pair, depth >= 1; both
documents are of ``space`` (the distribution column under Citus)."""

keyvalues = sa.Table(
    "keyvalues",
    metadata,
    sa.Column("space", sa.String(200), primary_key=True),
    sa.Column("keyspace", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(1000), primary_key=True),
    sa.Column("value", JSONValue, nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_keyvalues_expires_at", "expires_at"),
)
"""The key-value store: one row per (space, keyspace, key); expired rows are invisible."""

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("space", sa.String(200), nullable=False),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("payload", JSONValue, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("run_at", UTCDateTime(), nullable=False),
    sa.Column("locked_until", UTCDateTime(), nullable=True),
    sa.Column("locked_by", sa.String(200), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Index("ix_jobs_claim", "space", "topic", "status", "run_at"),
)
"""Queued jobs: ``queued`` → ``running`` (claimed until ``locked_until``) → ``done``, or back
to ``queued`` with a later ``run_at`` after a failure, or ``dead`` after ``max_attempts``."""

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("space", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("readonly", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)
"""API keys: only a SHA-256 of the secret part is stored."""

served_blueprints = sa.Table(
    "served_blueprints",
    metadata,
    sa.Column("space", sa.String(200), primary_key=True),
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("first_served_at", UTCDateTime(), nullable=False),
    sa.Column("last_served_at", UTCDateTime(), nullable=False),
    sa.Index("ix_served_blueprints_last", "space", "last_served_at"),
)
"""Each distinct blueprint a space was served with (bundled YAML text, by SHA-256), so
``datastore diff --against-database`` compares with what a database last ran."""

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", BigPK, primary_key=True, autoincrement=True),
    sa.Column("space", sa.String(200), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=True),
    sa.Column("collection", sa.String(2000), nullable=False),
    sa.Column("doc_id", sa.String(1000), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("at_ms", sa.BigInteger(), nullable=False),
    sa.Column("old", JSONBody, nullable=True),
    sa.Column("writer_xid", sa.BigInteger(), nullable=True),
    sa.Index("ix_changes_at_ms", "at_ms"),
    sa.Index(
        "ux_changes_seq",
        "space",
        "seq",
        unique=True,
        postgresql_where=sa.text("seq IS NOT NULL"),
        sqlite_where=sa.text("seq IS NOT NULL"),
    ),
    sa.Index(
        "ix_changes_pending",
        "writer_xid",
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    ),
)
"""The change log, written by triggers on ``documents`` in the writing transaction (migrations
0007, 0008): one row per inserted (``created``), updated or deleted document. ``id`` is taken
at the write; ``seq``, the change's number in its space (without gaps, the feed's cursor), is
given on PostgreSQL after the commit by the sequencer (``datastore_number_changes``; NULL until
then), on SQLite at the write. ``at_ms`` is the time in milliseconds since the epoch (when
numbered, on PostgreSQL); ``old`` holds a deleted document's row (``pk``, ``body``, ``extends``,
``created_at``, ``updated_at``, ``version``). ``writer_xid`` (PostgreSQL: a column default, the
writing transaction's id; migration 0009) lets the sequencer look only at the changes it has
not numbered yet (``change_sequencer``)."""

change_sequencer = sa.Table(
    "change_sequencer",
    metadata,
    sa.Column("numbered_below", sa.BigInteger(), nullable=False),
)
"""One row (PostgreSQL's sequencer; unused on SQLite): every change not numbered yet was written
by a transaction with an id at or above ``numbered_below`` (migration 0009)."""

change_spaces = sa.Table(
    "change_spaces",
    metadata,
    sa.Column("space", sa.String(200), primary_key=True),
    sa.Column("head", sa.BigInteger(), nullable=False),
    sa.Column("pruned_through", sa.BigInteger(), nullable=False),
)
"""Per space: the last change number given out (``head``; on PostgreSQL its row lock orders the
sequencer's runs, and writers never take it) and the last number retention removed (a cursor
below it has missed changes)."""
