"""exclusions: per-case silenced Sigma hits, kept but hidden

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exclusions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule_uids", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("conditions", sa.Text(), nullable=True),
        sa.Column("document", sa.Text(), nullable=False, server_default=""),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_exclusions_case", "exclusions", ["case_id"])
    op.add_column("detections", sa.Column("excluded_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("detections", "excluded_by")
    op.drop_index("ix_exclusions_case", table_name="exclusions")
    op.drop_table("exclusions")
