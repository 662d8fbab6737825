"""The change log: ``changes`` and ``change_spaces``, written by triggers on ``documents``.

Every insert, update and delete of a document appends one row to ``changes`` in the writing
transaction, whichever code path wrote it (requests, by-query writes, imports, detach). Changes
are numbered per space: the next number follows the greater of ``change_spaces.head`` and the
log's highest number for the space (``head`` is a floor that retention raises before it
deletes, so numbers never repeat).

PostgreSQL: the trigger is a deferred constraint trigger, so it runs at commit. The first
change of a transaction locks the space's ``change_spaces`` row, held until the commit: two
transactions of one space take numbers in the order they commit, and a reader that saw number
n has seen every number below it (a number taken by a transaction that commits later than one
with a higher number would be skipped by a reader past it). Taking the lock at commit rather
than at the write keeps it short, and a transaction waiting for it holds every other lock it
will need already, so it cannot close a cycle of waits. The transaction's later changes count
on in a transaction-local setting. One NOTIFY per transaction (``datastore_changes``, payload:
the first number) wakes the listening servers.

SQLite has one writer at a time: plain AFTER triggers number the changes in commit order.

Revision ID: 0007_changes
Revises: 0006_lineage_space
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from datastore.storage.tables import JSONBody

revision = "0007_changes"
down_revision = "0006_lineage_space"
branch_labels = None
depends_on = None

CHANNEL = "datastore_changes"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION datastore_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_space text;
    counter text;
    number bigint;
BEGIN
    row_space := CASE WHEN TG_OP = 'DELETE' THEN OLD.space ELSE NEW.space END;
    counter := 'datastore.change_seq_' || md5(row_space);
    number := nullif(current_setting(counter, true), '')::bigint;
    IF number IS NULL THEN
        -- The transaction's first change of the space: lock the space's row (held until
        -- commit, so commits of one space number in commit order), then, in a statement of
        -- its own (a fresh snapshot, which sees what the previous holder committed), the
        -- last number given.
        INSERT INTO change_spaces (space, head, pruned_through) VALUES (row_space, 0, 0)
            ON CONFLICT (space) DO NOTHING;
        PERFORM 1 FROM change_spaces WHERE space = row_space FOR UPDATE;
        SELECT greatest(s.head, coalesce(
                   (SELECT max(c.seq) FROM changes c WHERE c.space = row_space), 0))
            INTO number FROM change_spaces s WHERE s.space = row_space;
    END IF;
    -- Later changes of the transaction count on in a transaction-local setting: updating
    -- the space's row once per change made a transaction of n changes cost n squared
    -- (each UPDATE of a row updated before in the transaction walks its versions).
    number := number + 1;
    PERFORM set_config(counter, number::text, true);
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (space, seq, collection, doc_id, kind, at_ms, old)
        VALUES (OLD.space, number, OLD.collection, OLD.doc_id, 'deleted',
                (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
                jsonb_build_object('pk', OLD.pk, 'body', OLD.body, 'extends', OLD.extends,
                                   'created_at', OLD.created_at, 'updated_at', OLD.updated_at,
                                   'version', OLD.version));
    ELSE
        INSERT INTO changes (space, seq, collection, doc_id, kind, at_ms, old)
        VALUES (NEW.space, number, NEW.collection, NEW.doc_id,
                CASE WHEN TG_OP = 'INSERT' THEN 'created' ELSE 'updated' END,
                (extract(epoch FROM clock_timestamp()) * 1000)::bigint, NULL);
    END IF;
    IF current_setting('datastore.changes_notified', true) IS DISTINCT FROM 'y' THEN
        PERFORM pg_notify('{CHANNEL}', number::text);
        PERFORM set_config('datastore.changes_notified', 'y', true);
    END IF;
    RETURN NULL;
END
$$
"""

_PG_TRIGGER = """
CREATE CONSTRAINT TRIGGER documents_changes
AFTER INSERT OR UPDATE OR DELETE ON documents
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION datastore_log_change()
"""

_SQLITE_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


def _sqlite_trigger(event: str, row: str, kind: str, old: str) -> str:
    return f"""
CREATE TRIGGER documents_changes_{event.lower()} AFTER {event} ON documents
BEGIN
    INSERT OR IGNORE INTO change_spaces (space, head, pruned_through) VALUES ({row}.space, 0, 0);
    UPDATE change_spaces SET head = head + 1 WHERE space = {row}.space;
    INSERT INTO changes (space, seq, collection, doc_id, kind, at_ms, old)
    SELECT {row}.space, head, {row}.collection, {row}.doc_id, '{kind}', {_SQLITE_NOW_MS}, {old}
    FROM change_spaces WHERE space = {row}.space;
END
"""


_SQLITE_OLD = (
    "json_object('pk', OLD.pk, 'body', json(OLD.body), 'extends', OLD.extends, "
    "'created_at', OLD.created_at, 'updated_at', OLD.updated_at, 'version', OLD.version)"
)
SQLITE_TRIGGERS = (
    _sqlite_trigger("INSERT", "NEW", "created", "NULL"),
    _sqlite_trigger("UPDATE", "NEW", "updated", "NULL"),
    _sqlite_trigger("DELETE", "OLD", "deleted", _SQLITE_OLD),
)


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("collection", sa.String(2000), nullable=False),
        sa.Column("doc_id", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("old", JSONBody, nullable=True),
        sa.PrimaryKeyConstraint("space", "seq", name="pk_changes"),
    )
    op.create_index("ix_changes_at_ms", "changes", ["at_ms"])
    op.create_table(
        "change_spaces",
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("head", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("space", name="pk_change_spaces"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS documents_changes ON documents")
        op.execute("DROP FUNCTION IF EXISTS datastore_log_change()")
    else:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS documents_changes_{event}")
    op.drop_table("change_spaces")
    op.drop_index("ix_changes_at_ms", table_name="changes")
    op.drop_table("changes")
