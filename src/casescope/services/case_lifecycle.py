"""A case's settings: name, description, owner, and status (open or closed).

A closed case is read-only: the web app's write dependencies (`web/security.py`) and intake
(`evidence/intake.py`) refuse it with `CaseClosedError` until it is reopened. A case may
only be closed while none of its files is queued, paused or running, so that nothing
changes it after it is closed. Who may change the settings: an admin, or the case's owner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casescope.errors import CaseClosedError, CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import ACTIVE_JOB_STATES, AuditAction, CaseStatus
from casescope.model.tables import AuditRecord, Case, EvidenceFile, Job
from casescope.model.users import Role, User
from casescope.services.users import UserInfo

logger = logging.getLogger(__name__)


class CaseBusyError(CasescopeError):
    """The case has work in progress that the change would cut short (web: 409)."""


MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000


@dataclass(frozen=True)
class CaseSettings:
    id: int
    name: str
    description: str
    status: CaseStatus
    owner: str | None
    created_at: datetime
    files: int
    events: int


@dataclass(frozen=True)
class CaseChange:
    """What to change; None leaves a setting as it is. `owner` "" names nobody."""

    name: str | None = None
    description: str | None = None
    status: CaseStatus | None = None
    owner: str | None = None


def _case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFoundError(f"no case {case_id}")
    return case


def case_settings(db: Database, case_id: int) -> CaseSettings:
    with db.read() as session:
        case = _case(session, case_id)
        owner = session.get(User, case.owner_id) if case.owner_id is not None else None
        files, events = session.execute(
            select(
                func.count(EvidenceFile.id), func.coalesce(func.sum(EvidenceFile.event_count), 0)
            ).where(EvidenceFile.case_id == case_id)
        ).one()
        return CaseSettings(
            case.id,
            case.name,
            case.description,
            case.status,
            owner.username if owner is not None else None,
            case.created_at,
            files,
            events,
        )


def case_id_by_name(db: Database, name: str) -> int:
    with db.read() as session:
        case_id = session.scalar(select(Case.id).where(Case.name == name))
    if case_id is None:
        raise NotFoundError(f"no case named {name!r}")
    return case_id


def may_manage(db: Database, user: UserInfo, case_id: int) -> bool:
    """Whether `user` may change the case's settings: an admin, or its owner."""
    if user.role is Role.ADMIN:
        return True
    with db.read() as session:
        return _case(session, case_id).owner_id == user.id


def ensure_open(db: Database, case_id: int) -> None:
    """Raise CaseClosedError when the case is closed (NotFoundError when there is none)."""
    with db.read() as session:
        case = _case(session, case_id)
        if case.status is CaseStatus.CLOSED:
            raise CaseClosedError(case.name)


def _active_jobs(session: Session, case_id: int) -> int:
    return (
        session.scalar(
            select(func.count(Job.id))
            .join(EvidenceFile, EvidenceFile.id == Job.file_id)
            .where(EvidenceFile.case_id == case_id, Job.state.in_(ACTIVE_JOB_STATES))
        )
        or 0
    )


def _checked_name(session: Session, case: Case, name: str) -> str:
    name = name.strip()
    if not name:
        raise CasescopeError("a case needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise CasescopeError(f"a case name has at most {MAX_NAME_LENGTH} characters")
    taken = session.scalar(select(Case.id).where(Case.name == name, Case.id != case.id))
    if taken is not None:
        raise CasescopeError(f"a case named {name!r} already exists")
    return name


def _owner_id(session: Session, owner: str) -> int | None:
    if not owner.strip():
        return None
    user_id = session.scalar(select(User.id).where(User.username == owner.strip()))
    if user_id is None:
        raise CasescopeError(f"no user named {owner[:100]!r}")
    return user_id


def _apply(session: Session, case: Case, change: CaseChange) -> list[tuple[AuditAction, str]]:
    """Change `case`; the audit rows (action, detail) of what changed."""
    rows: list[tuple[AuditAction, str]] = []
    if change.name is not None and (name := _checked_name(session, case, change.name)) != case.name:
        rows.append((AuditAction.CASE_UPDATE, f"name: {case.name} -> {name}"))
        case.name = name
    if change.description is not None and change.description != case.description:
        if len(change.description) > MAX_DESCRIPTION_LENGTH:
            raise CasescopeError(f"a description has at most {MAX_DESCRIPTION_LENGTH} characters")
        case.description = change.description
        rows.append((AuditAction.CASE_UPDATE, "description"))
    if change.owner is not None and (owner := _owner_id(session, change.owner)) != case.owner_id:
        case.owner_id = owner
        rows.append((AuditAction.CASE_UPDATE, f"owner: {change.owner.strip() or '(none)'}"))
    if change.status is not None and change.status is not case.status:
        if change.status is CaseStatus.CLOSED and (active := _active_jobs(session, case.id)):
            raise CaseBusyError(
                f"{active} file(s) of this case are queued or being processed: cancel their "
                "jobs or let them finish before closing the case"
            )
        case.status = change.status
        closed = change.status is CaseStatus.CLOSED
        rows.append((AuditAction.CASE_CLOSE if closed else AuditAction.CASE_REOPEN, case.name))
    return rows


def update_case(db: Database, case_id: int, change: CaseChange, actor: str) -> CaseSettings:
    """Change a case's settings (all or nothing), one audit row per setting changed."""
    try:
        with db.session() as session:
            case = _case(session, case_id)
            for action, detail in _apply(session, case, change):
                record = AuditRecord(actor=actor[:100], action=action, case_id=case_id)
                record.detail = detail[:2000]
                session.add(record)
    except IntegrityError:  # the same name taken by a case created meanwhile
        raise CasescopeError(f"a case named {change.name!r} already exists") from None
    logger.info("case %d settings changed by %s", case_id, actor)
    return case_settings(db, case_id)
