"""files refused at intake as not evidence: status "rejected" rather than "failed"; indexes
for the audit page's tabs and filters (action, case, time)

Revision ID: 0023
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0025"
branch_labels = None
depends_on = None

#: The error intake has always written for a file it does not recognise (frozen here: a
#: migration must keep meaning what it meant when it was written).
NOT_EVIDENCE = "not recognised as evidence%"

_MOVE = sa.text("UPDATE evidence_files SET status = :new WHERE status = :old AND error LIKE :error")


#: The audit page counts each tab (a set of actions) and filters by case and time range.
AUDIT_INDEXES = {"ix_audit_action": "action", "ix_audit_case": "case_id", "ix_audit_at": "at"}


def upgrade() -> None:
    op.execute(_MOVE.bindparams(old="failed", new="rejected", error=NOT_EVIDENCE))
    with op.batch_alter_table("audit") as batch_op:
        for name, column in AUDIT_INDEXES.items():
            batch_op.create_index(name, [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch_op:
        for name in AUDIT_INDEXES:
            batch_op.drop_index(name)
    op.execute(_MOVE.bindparams(old="rejected", new="failed", error=NOT_EVIDENCE))
