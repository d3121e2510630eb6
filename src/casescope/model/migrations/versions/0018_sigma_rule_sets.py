"""sigma rule sets: placeholder values, and what other rule sets bring with their rules

`sigma_placeholders`: the analyst's values of `|expand` placeholders (`%known_cdcs%`).
`rules.warnings`: what had to be fixed for pySigma to load the rule (a bare tag...);
`rules.details`: Hayabusa's `details` template; `rules.aliases`: the rule set's field
aliases the rule uses (JSON); `rules.as_written`: run without log-source pipelines (the
detection names its Channel, as in Hayabusa's rule sets).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sigma_placeholders",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("values", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Plain ADD COLUMN: detections refer to rules, so no batch copy of the table.
    op.add_column("rules", sa.Column("warnings", sa.Text(), nullable=True))
    op.add_column("rules", sa.Column("details", sa.Text(), nullable=False, server_default=""))
    op.add_column("rules", sa.Column("aliases", sa.Text(), nullable=True))
    op.add_column(
        "rules", sa.Column("as_written", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    for column in ("as_written", "aliases", "details", "warnings"):
        op.drop_column("rules", column)
    op.drop_table("sigma_placeholders")
