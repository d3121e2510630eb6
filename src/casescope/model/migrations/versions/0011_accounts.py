"""accounts: forced password change, last login, token scopes, no permanent tokens

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Lifetime given to tokens made before expiry was required (the default maximum).
LEGACY_TOKEN_DAYS = 90


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite supports it): a batch copy of `users` would drop the old table
    # and, with foreign keys on, cascade-delete every user's tokens, sessions and grants.
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("users", sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))
    # Tokens made before scopes could do everything their user could: they stay so.
    op.add_column(
        "api_tokens",
        sa.Column("scope", sa.String(length=16), nullable=False, server_default="write"),
    )
    tokens = sa.table("api_tokens", sa.column("expires_at", sa.Float()))
    op.execute(
        tokens.update()
        .where(tokens.c.expires_at.is_(None))
        .values(expires_at=time.time() + LEGACY_TOKEN_DAYS * 86400)
    )


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35+), for the same reason as above.
    op.drop_column("api_tokens", "scope")
    op.drop_column("users", "last_login_at")
    op.drop_column("users", "must_change_password")
