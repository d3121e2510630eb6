"""files refused at intake as not evidence: status "rejected" rather than "failed"

Revision ID: 0023
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0020"
branch_labels = None
depends_on = None

#: The error intake has always written for a file it does not recognise (frozen here: a
#: migration must keep meaning what it meant when it was written).
NOT_EVIDENCE = "not recognised as evidence%"

_MOVE = sa.text("UPDATE evidence_files SET status = :new WHERE status = :old AND error LIKE :error")


def upgrade() -> None:
    op.execute(_MOVE.bindparams(old="failed", new="rejected", error=NOT_EVIDENCE))


def downgrade() -> None:
    op.execute(_MOVE.bindparams(old="rejected", new="failed", error=NOT_EVIDENCE))
