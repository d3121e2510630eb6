"""case lifecycle: a case's status (open/closed) and owner; the record of deleted cases;
files a cancel marked failed become cancelled

Revision ID: 0025
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0022"
branch_labels = None
depends_on = None

#: What a cancel wrote on a file with no earlier outcome before 0025 (then `failed`, now
#: `cancelled`): frozen here, as a migration must keep meaning what it meant.
CANCELLED_ERROR = "cancelled: operation %"
_STATUS = sa.text(
    "UPDATE evidence_files SET status = :new WHERE status = :old AND error LIKE :error"
).bindparams(error=CANCELLED_ERROR)


def upgrade() -> None:
    # Plain ADD COLUMN: a batch copy of `cases` would cascade-delete grants, marks, searches.
    op.add_column(
        "cases",
        sa.Column("status", sa.String(length=16), nullable=False, server_default="open"),
    )
    op.add_column(
        "cases",
        sa.Column(
            "owner_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_cases_owner", ondelete="SET NULL"),
            nullable=True,
        ),
        # REFERENCES inside ADD COLUMN: SQLite cannot add a constraint to a table later
        inline_references=True,
    )
    op.create_table(
        "case_deletions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("deleted_by", sa.String(length=100), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("leftovers", sa.Text(), nullable=False),
        sa.Column("cleaned", sa.Boolean(), nullable=False),
    )
    op.execute(_STATUS.bindparams(old="failed", new="cancelled"))


def downgrade() -> None:
    op.execute(_STATUS.bindparams(old="cancelled", new="failed"))
    op.drop_table("case_deletions")
    op.drop_column("cases", "status")
    # `owner_id` stays: SQLite cannot drop a column holding a foreign key, and a batch copy
    # of `cases` would cascade-delete grants, marks and searches. Older code ignores it.
