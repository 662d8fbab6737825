"""The change log stops serialising commits: writers append, a sequencer numbers.

0007 numbered each change at commit under the space's ``change_spaces`` row lock, held through
the commit (WAL flush included), and sent ``pg_notify`` from the writing transaction: the
commits of one space followed each other, and every notifying commit of the database took
PostgreSQL's one notification lock. Here, on PostgreSQL:

- ``changes`` gets an ``id`` (its primary key, a sequence value taken at the write) and a
  nullable ``seq``: a plain AFTER ROW trigger appends the change with ``seq`` NULL. It takes no
  lock and sends no NOTIFY. Two writers of one document still log in order: the second waits
  on the row lock until the first commits, so its ``id`` is the larger.
- ``datastore_number_changes(space)`` is the sequencer: for each space with unnumbered
  committed changes (the partial index ``ix_changes_unnumbered``), it locks the space's
  ``change_spaces`` row (only sequencers and retention take it, never writers), numbers those
  changes from the head on in ``id`` order (at most ``RUN_LIMIT`` a run), raises the head and
  sends one NOTIFY (payload: the new head), all in one short transaction; it returns how many
  it numbered. Runs are serialised per space and each commits at
  once, so a reader that sees number n has seen every number below it.

SQLite has one writer: its triggers keep numbering at the write (``seq`` is never NULL there),
on the same table.

Existing rows keep their numbers; a downgrade numbers what is pending first.

Revision ID: 0008_change_sequencer
Revises: 0007_changes
Create Date: 2026-12-05
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

from datastore.storage.tables import JSONBody

revision = "0008_change_sequencer"
down_revision = "0007_changes"
branch_labels = None
depends_on = None

CHANNEL = "datastore_changes"
RUN_LIMIT = 10000
"""Changes numbered per space per run at most (an import of a million documents is numbered
over many short runs, not in one long one that readers would queue behind)."""
BigPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COPIED = "space, seq, collection, doc_id, kind, at_ms, old"

_PG_APPEND = """
CREATE OR REPLACE FUNCTION datastore_append_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (space, collection, doc_id, kind, at_ms, old)
        VALUES (OLD.space, OLD.collection, OLD.doc_id, 'deleted',
                (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
                jsonb_build_object('pk', OLD.pk, 'body', OLD.body, 'extends', OLD.extends,
                                   'created_at', OLD.created_at, 'updated_at', OLD.updated_at,
                                   'version', OLD.version));
    ELSE
        INSERT INTO changes (space, collection, doc_id, kind, at_ms, old)
        VALUES (NEW.space, NEW.collection, NEW.doc_id,
                CASE WHEN TG_OP = 'INSERT' THEN 'created' ELSE 'updated' END,
                (extract(epoch FROM clock_timestamp()) * 1000)::bigint, NULL);
    END IF;
    RETURN NULL;
END
$$
"""

_PG_TRIGGER = """
CREATE TRIGGER documents_changes
AFTER INSERT OR UPDATE OR DELETE ON documents
FOR EACH ROW EXECUTE FUNCTION datastore_append_change()
"""

_PG_SEQUENCER = f"""
CREATE OR REPLACE FUNCTION datastore_number_changes(target text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    pending text;
    current bigint;
    numbered bigint;
    total bigint := 0;
BEGIN
    IF pg_is_in_recovery() THEN  -- a read replica: its primary numbers
        RETURN 0;
    END IF;
    -- Spaces in name order: two sequencers lock their rows in one order (no deadlock).
    FOR pending IN
        SELECT DISTINCT c.space FROM changes c
        WHERE c.seq IS NULL AND (target IS NULL OR c.space = target) ORDER BY 1
    LOOP
        INSERT INTO change_spaces (space, head, pruned_through) VALUES (pending, 0, 0)
            ON CONFLICT (space) DO NOTHING;
        -- Waits for a sequencer numbering this space now; then reads the head it left.
        SELECT s.head INTO current FROM change_spaces s WHERE s.space = pending FOR UPDATE;
        -- A statement of its own, so a snapshot taken after the lock: what the previous
        -- holder numbered is numbered; what committed since is numbered now, in id order.
        WITH unnumbered AS (
            SELECT c.id, row_number() OVER (ORDER BY c.id) AS n
            FROM (SELECT id FROM changes WHERE space = pending AND seq IS NULL
                  ORDER BY id LIMIT {RUN_LIMIT}) c
        )
        UPDATE changes c
        SET seq = current + u.n,
            at_ms = greatest(c.at_ms, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
        FROM unnumbered u WHERE c.id = u.id;
        GET DIAGNOSTICS numbered = ROW_COUNT;
        IF numbered > 0 THEN
            UPDATE change_spaces SET head = current + numbered WHERE space = pending;
            PERFORM pg_notify('{CHANNEL}', (current + numbered)::text);
            total := total + numbered;
        END IF;
    END LOOP;
    RETURN total;
END
$$
"""


def _previous() -> ModuleType:
    """Migration 0007 (its triggers, which a downgrade puts back, and SQLite keeps)."""
    path = Path(__file__).with_name("0007_changes.py")
    spec = importlib.util.spec_from_file_location("_datastore_migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _drop_triggers(postgresql: bool) -> None:
    if postgresql:
        op.execute("DROP TRIGGER IF EXISTS documents_changes ON documents")
        op.execute("DROP FUNCTION IF EXISTS datastore_log_change()")
        op.execute("DROP FUNCTION IF EXISTS datastore_append_change()")
        op.execute("DROP FUNCTION IF EXISTS datastore_number_changes(text)")
    else:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS documents_changes_{event}")


def _move_rows_to(create: list[sa.SchemaItem]) -> None:
    """Rebuild ``changes`` with ``create``'s columns and constraints, keeping every row."""
    op.execute(f"CREATE TABLE changes_moving AS SELECT {_COPIED} FROM changes")
    op.drop_index("ix_changes_at_ms", table_name="changes")
    op.drop_table("changes")
    op.create_table("changes", *create)
    op.create_index("ix_changes_at_ms", "changes", ["at_ms"])
    op.execute(
        f"INSERT INTO changes ({_COPIED}) SELECT {_COPIED} FROM changes_moving ORDER BY space, seq"
    )
    op.drop_table("changes_moving")


def _columns(seq_nullable: bool) -> list[sa.SchemaItem]:
    return [
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=seq_nullable),
        sa.Column("collection", sa.String(2000), nullable=False),
        sa.Column("doc_id", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("old", JSONBody, nullable=True),
    ]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    _drop_triggers(postgresql)
    _move_rows_to(
        [
            sa.Column("id", BigPK, primary_key=True, autoincrement=True),
            *_columns(seq_nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_changes"),
        ]
    )
    op.create_index("ux_changes_seq", "changes", ["space", "seq"], unique=True)
    op.create_index(
        "ix_changes_unnumbered",
        "changes",
        ["space", "id"],
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )
    # The head is the sequencer's alone now: never below a number the log holds.
    op.execute(
        "UPDATE change_spaces SET head = (SELECT max(c.seq) FROM changes c"
        " WHERE c.space = change_spaces.space)"
        " WHERE head < (SELECT coalesce(max(c.seq), 0) FROM changes c"
        " WHERE c.space = change_spaces.space)"
    )
    if postgresql:
        op.execute(_PG_APPEND)
        op.execute(_PG_TRIGGER)
        op.execute(_PG_SEQUENCER)
    else:
        for trigger in _previous().SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("SELECT datastore_number_changes(NULL)")  # nothing is left unnumbered
    _drop_triggers(postgresql)
    op.drop_index("ix_changes_unnumbered", table_name="changes")
    op.drop_index("ux_changes_seq", table_name="changes")
    _move_rows_to(
        [*_columns(seq_nullable=False), sa.PrimaryKeyConstraint("space", "seq", name="pk_changes")]
    )
    previous = _previous()
    if postgresql:
        op.execute(previous._PG_FUNCTION)
        op.execute(previous._PG_TRIGGER)
    else:
        for trigger in previous.SQLITE_TRIGGERS:
            op.execute(trigger)
