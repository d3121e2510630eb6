"""sigma rule set manifests; the set each file's detections come from; detection fields

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_sets",
        sa.Column("hash", sa.String(length=32), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sigma_ruleset", sa.String(length=32), nullable=True))
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fields", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.drop_column("fields")
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.drop_column("sigma_ruleset")
    op.drop_table("rule_sets")
