"""sigma placeholders: the analyst's values of `|expand` placeholders (`%known_cdcs%`)

Revision ID: 0018
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sigma_placeholders",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("values", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sigma_placeholders")
