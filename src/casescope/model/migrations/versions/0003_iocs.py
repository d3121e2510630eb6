"""iocs and ioc hits

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iocs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("original", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "type", "value"),
    )
    op.create_table(
        "ioc_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ioc_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["evidence_files.id"]),
        sa.ForeignKeyConstraint(["ioc_id"], ["iocs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ioc_hits", schema=None) as batch_op:
        batch_op.create_index("ix_ioc_hits_case_ioc", ["case_id", "ioc_id"], unique=False)
        batch_op.create_index("ix_ioc_hits_file", ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ioc_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_ioc_hits_file")
        batch_op.drop_index("ix_ioc_hits_case_ioc")
    op.drop_table("ioc_hits")
    op.drop_table("iocs")
