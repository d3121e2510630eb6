"""load pieces: parts of a large file's segment the owner loads while the file is parsed

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "load_pieces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("file_id", sa.Integer(), sa.ForeignKey("evidence_files.id"), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("piece", sa.Integer(), nullable=False),
        sa.Column("seq_from", sa.BigInteger(), nullable=False),
        sa.Column("seq_to", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("loaded", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("file_id", "job_id", "attempt", "piece"),
    )
    op.create_index("ix_load_pieces_loaded", "load_pieces", ["loaded", "file_id"])


def downgrade() -> None:
    op.drop_index("ix_load_pieces_loaded", table_name="load_pieces")
    op.drop_table("load_pieces")
