"""detection hosts: the computer of each detection's event, and indexes for the views

Revision ID: 0017
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Detections stored before this revision have no computer (NULL): the detections service
    # fills it in from the event index the first time the case's detections are read.
    with op.batch_alter_table("detections") as batch:
        # Text, not String(255): a computer name in NDJSON/CSV evidence can be any length.
        batch.add_column(sa.Column("computer", sa.Text(), nullable=True))
        batch.drop_index("ix_detections_case_rule")
        batch.create_index(
            "ix_detections_case_rule_host", ["case_id", "rule_id", "computer", "ts"], unique=False
        )
        batch.create_index("ix_detections_case_ts", ["case_id", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("detections") as batch:
        batch.drop_index("ix_detections_case_ts")
        batch.drop_index("ix_detections_case_rule_host")
        batch.create_index("ix_detections_case_rule", ["case_id", "rule_id"], unique=False)
        batch.drop_column("computer")
