"""user time zone: the zone the web app shows a user's times in

Revision ID: 0014
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch copy of `users` would cascade-delete tokens, sessions, grants.
    op.add_column(
        "users", sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC")
    )


def downgrade() -> None:
    op.drop_column("users", "timezone")
