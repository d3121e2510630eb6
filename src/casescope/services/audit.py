"""The audit log: one row per pipeline step and per state-changing action, newest first."""

from __future__ import annotations

from sqlalchemy import select

from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord


def audit_rows(
    db: Database, limit: int, case_id: int | None = None, action: AuditAction | None = None
) -> list[dict]:
    """The newest `limit` rows, of one case and of one action when given."""
    query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(AuditRecord.case_id == case_id)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    with db.read() as session:
        return [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action.value,
                "case_id": r.case_id,
                "file_id": r.file_id,
                "ok": r.ok,
                "detail": r.detail,
            }
            for r in session.scalars(query)
        ]
