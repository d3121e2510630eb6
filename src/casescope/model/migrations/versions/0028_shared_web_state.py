"""login_failures and setup_tokens: web state shared by every serve process

Revision ID: 0028
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("kind", "key_hash"),
    )
    op.create_index("ix_login_failures_kind_last", "login_failures", ["kind", "last_at"])
    op.create_table(
        "setup_tokens",
        sa.Column("id_hash", sa.String(length=64), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("setup_tokens")
    op.drop_index("ix_login_failures_kind_last", table_name="login_failures")
    op.drop_table("login_failures")
