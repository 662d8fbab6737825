"""The lineage table carries its documents' space (the distribution column under Citus).

Revision ID: 0006_lineage_space
Revises: 0005_served_blueprints
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_lineage_space"
down_revision = "0005_served_blueprints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("document_lineage", sa.Column("space", sa.String(200), nullable=True))
    op.execute(
        "UPDATE document_lineage SET space = (SELECT documents.space FROM documents"
        " WHERE documents.pk = document_lineage.descendant_pk)"
    )
    with op.batch_alter_table("document_lineage") as batch:
        batch.alter_column("space", existing_type=sa.String(200), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("document_lineage") as batch:
        batch.drop_column("space")
