"""bulk operations (issue 5): `operations` table, `jobs.operation_id`, paused jobs

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_KINDS = ("ingest", "upload", "reindex", "sigma_only", "ioc_only", "retry")
_STATES = ("running", "paused", "cancelled", "completed")


def _active_index(states: str) -> dict:
    where = sa.text(f"state IN ({states})")
    return {"unique": True, "sqlite_where": where, "postgresql_where": where}


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(*_KINDS, name="operationkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(*_STATES, name="operationstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("files_total", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("active_seconds", sa.Float(), nullable=False),
        sa.Column("running_since", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_operations_case", "operations", ["case_id", "id"])
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("operation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_jobs_operation_id", "operations", ["operation_id"], ["id"])
        batch_op.create_index("ix_jobs_operation", ["operation_id", "state"])
        # Without it, "does this file have an active job?" scanned every queued job: quadratic
        # when thousands of files are queued at once.
        batch_op.create_index("ix_jobs_file", ["file_id", "state"])
        # A paused job still holds its file: the file may not be queued a second time.
        batch_op.drop_index("uq_jobs_active_file")
        batch_op.create_index(
            "uq_jobs_active_file", ["file_id"], **_active_index("'queued', 'running', 'paused'")
        )


def downgrade() -> None:
    op.execute("UPDATE jobs SET state = 'queued' WHERE state = 'paused'")
    op.execute("UPDATE jobs SET state = 'failed' WHERE state = 'cancelled'")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("uq_jobs_active_file")
        batch_op.create_index(
            "uq_jobs_active_file", ["file_id"], **_active_index("'queued', 'running'")
        )
        batch_op.drop_index("ix_jobs_file")
        batch_op.drop_index("ix_jobs_operation")
        batch_op.drop_constraint("fk_jobs_operation_id", type_="foreignkey")
        batch_op.drop_column("operation_id")
    op.drop_index("ix_operations_case", table_name="operations")
    op.drop_table("operations")
