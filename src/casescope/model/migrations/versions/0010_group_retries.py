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
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("group_deaths", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("group_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("group_limit")
        batch.drop_column("group_deaths")
