"""Cases: create, find, list — shared by the CLI and the web app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import AuditAction, CaseStatus, FileStatus
from casescope.model.tables import AuditRecord, Case, DeletedCase, EvidenceFile


@dataclass(frozen=True)
class CaseSummary:
    id: int
    name: str
    description: str
    files: int
    events: int
    failed: int
    rejected: int  # not evidence by their content (refused at intake): not failures
    status: CaseStatus  # a closed case is read-only


def _fresh_id(session: Session) -> int | None:
    """An id above every case's, deleted ones included, once a case was deleted: SQLite
    would hand out the largest id again after its row is gone, and a link to the deleted
    case must not show the new one. None: the database's own sequence is enough."""
    deleted = session.scalar(select(func.max(DeletedCase.id)))
    if deleted is None or session.get_bind().dialect.name != "sqlite":
        return None
    return max(deleted, session.scalar(select(func.max(Case.id))) or 0) + 1


def create_case(
    db: Database,
    name: str,
    description: str = "",
    actor: str = "cli",
    owner_id: int | None = None,
) -> Case:
    name = name.strip()
    if not name:
        raise CasescopeError("a case needs a name")
    try:
        with db.session() as session:
            case = Case(
                id=_fresh_id(session), name=name, description=description, owner_id=owner_id
            )
            session.add(case)
            session.flush()
            session.add(
                AuditRecord(
                    actor=actor, action=AuditAction.CASE_CREATE, case_id=case.id, detail=name
                )
            )
            return case
    except IntegrityError:
        raise CasescopeError(f"a case named {name!r} already exists") from None


def get_case(db: Database, name: str) -> Case:
    with db.read() as session:
        case = session.scalar(select(Case).where(Case.name == name))
    if case is None:
        raise NotFoundError(f"no case named {name!r} (create it with `casescope case create`)")
    return case


def get_or_create_case(db: Database, name: str, actor: str = "cli") -> tuple[Case, bool]:
    try:
        return get_case(db, name), False
    except NotFoundError:
        return create_case(db, name, actor=actor), True


def list_cases(db: Database) -> list[CaseSummary]:
    with db.read() as session:
        rows = session.execute(
            select(
                Case.id,
                Case.name,
                Case.description,
                func.count(EvidenceFile.id),
                func.coalesce(func.sum(EvidenceFile.event_count), 0),
                func.count(EvidenceFile.id).filter(EvidenceFile.status == FileStatus.FAILED),
                func.count(EvidenceFile.id).filter(EvidenceFile.status == FileStatus.REJECTED),
                Case.status,
            )
            .outerjoin(EvidenceFile, EvidenceFile.case_id == Case.id)
            .group_by(Case.id)
            .order_by(Case.id)
        ).all()
    return [CaseSummary(*row) for row in rows]
