"""audit actions named noun.verb: rename the rows written under the old names

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

#: Old name -> new name. Frozen here (not read from `AuditAction`): a migration must keep
#: meaning what it meant when it was written.
RENAMED = {
    "intake": "intake.registered",
    "intake_refused": "intake.refused",
    "upload": "intake.upload",
    "import_folder": "intake.import_folder",
    "export": "event.export",
    "estimating": "step.estimating",
    "indexing": "step.indexing",
    "sigma": "step.sigma",
    "ioc": "step.ioc",
}

_RENAME = sa.text("UPDATE audit SET action = :new WHERE action = :old")


def upgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(_RENAME.bindparams(old=old, new=new))


def downgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(_RENAME.bindparams(old=new, new=old))
