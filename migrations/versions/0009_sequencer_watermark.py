"""The sequencer stops walking the log's dead index entries: it looks only past a watermark.

0008's sequencer found the unnumbered changes through the partial index
``ix_changes_unnumbered`` (and PostgreSQL could choose ``ux_changes_seq``, whose NULL entries
serve ``seq IS NULL`` too). Numbering a change updates its row, which leaves the entry of the
unnumbered version behind in both indexes until a VACUUM removes it, and every run walked those
entries. After an import (or any burst of writes) a run cost what the log had numbered since
the last VACUUM, not what it numbered: ``python -m bench.changes --sequencer`` (200,000 imported
documents, then writers at ~1,000 commits/s, a run per 50 ms) ~5 ms a run against ~1.8 ms
here; in ``bench.http``, whose seed is such an import and whose PostgreSQL runs without
autovacuum, 5 to 10 ms a run under PATCH load, a fifth to a third of PostgreSQL's CPU.

Here, on PostgreSQL:

- each change records the transaction that wrote it (``writer_xid``, a column default: the
  trigger of 0008 is unchanged), indexed where ``seq`` is NULL (``ix_changes_pending``);
- the sequencer keeps a watermark (``change_sequencer.numbered_below``): when a run has numbered
  changes, and everything it could see in every space, it raises the watermark to the oldest
  transaction still running when the run began (``pg_snapshot_xmin``). Every transaction
  below it had ended then, so each of its changes was visible to the run and is numbered. A
  change that is not yet visible comes from a transaction at or above it, so looking at
  ``writer_xid >= watermark`` misses nothing, and that range holds only the entries written
  since about the last run that numbered something.
  A long-open transaction holds the watermark back (the run then looks at more, as before);
  it never makes a change be skipped. Numbering stays in ``id`` order, as in 0008.
- ``ux_changes_seq`` becomes partial (``seq IS NOT NULL``): feed reads (``seq > cursor``) and
  the head (``max(seq)``) still use it, and it no longer offers the NULL entries.

SQLite numbers at the write (``seq`` is never NULL there): it gets the same columns and indexes
and keeps its triggers. Upgrade numbers what is pending first; so does downgrade.

Revision ID: 0009_sequencer_watermark
Revises: 0008_change_sequencer
Create Date: 2026-12-05
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0009_sequencer_watermark"
down_revision = "0008_change_sequencer"
branch_labels = None
depends_on = None

CHANNEL = "datastore_changes"
RUN_LIMIT = 10000
"""Changes numbered per space per run at most (as in 0008)."""

_PG_SEQUENCER = f"""
CREATE OR REPLACE FUNCTION datastore_number_changes(target text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    pending text;
    current bigint;
    numbered bigint;
    total bigint := 0;
    below bigint;              -- every change not numbered yet has writer_xid >= below
    horizon bigint;            -- transactions below this had ended when the run began
    complete boolean := true;  -- everything visible was numbered (no space hit the limit)
BEGIN
    IF pg_is_in_recovery() THEN  -- a read replica: its primary numbers
        RETURN 0;
    END IF;
    horizon := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
    SELECT coalesce(max(s.numbered_below), 0) INTO below FROM change_sequencer s;
    -- Spaces in name order: two sequencers lock their rows in one order (no deadlock).
    FOR pending IN
        SELECT DISTINCT c.space FROM changes c
        WHERE c.seq IS NULL AND c.writer_xid >= below AND (target IS NULL OR c.space = target)
        ORDER BY 1
    LOOP
        INSERT INTO change_spaces (space, head, pruned_through) VALUES (pending, 0, 0)
            ON CONFLICT (space) DO NOTHING;
        -- Waits for a sequencer numbering this space now; then reads the head it left.
        SELECT s.head INTO current FROM change_spaces s WHERE s.space = pending FOR UPDATE;
        -- A statement of its own, so a snapshot taken after the lock: what the previous
        -- holder numbered is numbered; what committed since is numbered now, in id order.
        WITH unnumbered AS (
            SELECT c.id, row_number() OVER (ORDER BY c.id) AS n
            FROM (SELECT id FROM changes
                  WHERE space = pending AND seq IS NULL AND writer_xid >= below
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
        IF numbered >= {RUN_LIMIT} THEN
            complete := false;
        END IF;
    END LOOP;
    -- Only after numbering something: an idle run writes nothing (the watermark matters only
    -- for the entries numbering leaves behind).
    IF target IS NULL AND complete AND total > 0 AND horizon > below THEN
        UPDATE change_sequencer SET numbered_below = greatest(numbered_below, horizon);
    END IF;
    RETURN total;
END
$$
"""


_NUMBER_ALL = """
DO $$ BEGIN
    WHILE datastore_number_changes(NULL) > 0 LOOP
    END LOOP;
END $$
"""
"""Number every pending change (a run numbers at most ``RUN_LIMIT`` per space)."""


def _previous_sequencer() -> str:
    """0008's ``datastore_number_changes`` (which a downgrade puts back)."""
    path = Path(__file__).with_name("0008_change_sequencer.py")
    spec = importlib.util.spec_from_file_location("_datastore_migration_0008", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module._PG_SEQUENCER)


def _seq_index(partial: bool) -> None:
    op.drop_index("ux_changes_seq", table_name="changes")
    where = sa.text("seq IS NOT NULL") if partial else None
    op.create_index(
        "ux_changes_seq",
        "changes",
        ["space", "seq"],
        unique=True,
        postgresql_where=where,
        sqlite_where=where,
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "change_sequencer",
        sa.Column("numbered_below", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO change_sequencer (numbered_below) VALUES (0)")
    # Takes the table's lock: writers that appended before it have ended, later ones wait.
    op.add_column("changes", sa.Column("writer_xid", sa.BigInteger(), nullable=True))
    if postgresql:
        op.execute(_NUMBER_ALL)  # no change is left unnumbered without its writer_xid
        op.execute(
            "ALTER TABLE changes ALTER COLUMN writer_xid"
            " SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    op.drop_index("ix_changes_unnumbered", table_name="changes")
    op.create_index(
        "ix_changes_pending",
        "changes",
        ["writer_xid"],
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )
    _seq_index(partial=True)
    if postgresql:
        op.execute(_PG_SEQUENCER)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE")  # writers wait
        op.execute(_NUMBER_ALL)  # nothing is left unnumbered
        op.execute(_previous_sequencer())
    _seq_index(partial=False)
    op.drop_index("ix_changes_pending", table_name="changes")
    op.create_index(
        "ix_changes_unnumbered",
        "changes",
        ["space", "id"],
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )
    op.execute("ALTER TABLE changes DROP COLUMN writer_xid")  # SQLite 3.35 or later
    op.drop_table("change_sequencer")
