"""migration_checkpoints: progress of `casescope migrate`, kept on the target

Revision ID: 0026
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("table_name", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("last_key", sa.Text(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("done", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("problems", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "phase", "table_name", "unit"),
    )


def downgrade() -> None:
    op.drop_table("migration_checkpoints")
