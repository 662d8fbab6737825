"""Documents and the $extends lineage closure table.

Revision ID: 0001_documents
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from datastore.storage.tables import BigPK, JSONBody, UTCDateTime

revision = "0001_documents"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("pk", BigPK, primary_key=True, autoincrement=True),
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("collection", sa.String(2000), nullable=False),
        sa.Column("doc_id", sa.String(1000), nullable=False),
        sa.Column("body", JSONBody, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("extends", sa.String(3000), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_documents"),
        sa.UniqueConstraint("space", "collection", "doc_id", name="uq_documents_path"),
    )
    op.create_index("ix_documents_listing", "documents", ["space", "collection", "pk"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_documents_body_gin",
            "documents",
            ["body"],
            postgresql_using="gin",
            postgresql_ops={"body": "jsonb_path_ops"},
        )
    op.create_table(
        "document_lineage",
        sa.Column("ancestor_pk", BigPK, nullable=False),
        sa.Column("descendant_pk", BigPK, nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ancestor_pk"],
            ["documents.pk"],
            name="fk_document_lineage_ancestor_pk_documents",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["descendant_pk"],
            ["documents.pk"],
            name="fk_document_lineage_descendant_pk_documents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ancestor_pk", "descendant_pk", name="pk_document_lineage"),
    )
    op.create_index(
        "ix_document_lineage_descendant", "document_lineage", ["descendant_pk", "depth"]
    )


def downgrade() -> None:
    op.drop_table("document_lineage")
    op.drop_table("documents")
