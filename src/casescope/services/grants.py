"""Case grants as the admin pages list them: which non-admin user may open which case.

Granting and revoking are `services.users.grant_case` / `revoke_case` (also `casescope user
grant`); admins open every case without a grant, so their grants are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from casescope.model.db import Database
from casescope.model.tables import Case
from casescope.model.users import CaseAccess, Role, User


@dataclass(frozen=True)
class Grant:
    username: str
    role: Role
    active: bool
    case_id: int
    case_name: str


def list_grants(db: Database) -> list[Grant]:
    """Every grant, by user name then case id."""
    query = (
        select(User.username, User.role, User.active, Case.id, Case.name)
        .join(CaseAccess, CaseAccess.user_id == User.id)
        .join(Case, Case.id == CaseAccess.case_id)
        .order_by(User.username, Case.id)
    )
    with db.read() as session:
        return [
            Grant(name, Role(role), active, case_id, case_name)
            for name, role, active, case_id, case_name in session.execute(query)
        ]


def case_names(db: Database) -> list[tuple[int, str]]:
    """(id, name) of every case, by id: the choices of the grant form."""
    with db.read() as session:
        return [
            (cid, name)
            for cid, name in session.execute(select(Case.id, Case.name).order_by(Case.id))
        ]
