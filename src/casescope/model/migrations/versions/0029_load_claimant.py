"""evidence_files.load_claimant: the query-id prefix of the loader that last claimed a file

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evidence_files", sa.Column("load_claimant", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evidence_files") as batch:
        batch.drop_column("load_claimant")
