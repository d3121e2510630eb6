"""group retries: a dead group's files are retried in smaller groups without using attempts

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy of the table: the queue's rows stay where they are).
    op.add_column(
        "jobs", sa.Column("group_deaths", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("jobs", sa.Column("group_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "group_limit")
    op.drop_column("jobs", "group_deaths")
