"""The key-value store.

Revision ID: 0002_keyvalues
Revises: 0001_documents
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from datastore.storage.tables import JSONValue, UTCDateTime

revision = "0002_keyvalues"
down_revision = "0001_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyvalues",
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("keyspace", sa.String(200), nullable=False),
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("value", JSONValue, nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("space", "keyspace", "key", name="pk_keyvalues"),
    )
    op.create_index("ix_keyvalues_expires_at", "keyvalues", ["expires_at"])


def downgrade() -> None:
    op.drop_table("keyvalues")
