"""Served blueprints.

Revision ID: 0005_served_blueprints
Revises: 0004_api_keys
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from datastore.storage.tables import UTCDateTime

revision = "0005_served_blueprints"
down_revision = "0004_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_blueprints",
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_served_at", UTCDateTime(), nullable=False),
        sa.Column("last_served_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("space", "hash", name="pk_served_blueprints"),
    )
    op.create_index("ix_served_blueprints_last", "served_blueprints", ["space", "last_served_at"])


def downgrade() -> None:
    op.drop_index("ix_served_blueprints_last", table_name="served_blueprints")
    op.drop_table("served_blueprints")
