"""Cases: list (those the caller may open), create, dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError
from casescope.model.enums import CaseStatus
from casescope.model.users import Role
from casescope.services.cases import create_case, list_cases
from casescope.services.dashboard import build_dashboard
from casescope.services.users import accessible_case_ids, grant_case
from casescope.web.security import Caller, CaseRead, Principal, State, Writer
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases", tags=["cases"])


class NewCase(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=10_000)] = ""


class CaseOut(BaseModel):
    id: int
    name: str
    description: str
    files: int = Field(description="Evidence files.")
    events: int = Field(description="Events parsed from them.")
    failed: int = Field(description="Files that failed.")
    rejected: int = Field(description="Files rejected at intake: not evidence by content.")
    status: CaseStatus = Field(description="`closed`: read-only until reopened.")


class NewCaseOut(BaseModel):
    id: int
    name: str


class DashboardOut(BaseModel):
    case_id: int
    files_by_status: dict[str, int] = Field(description="Files per status (`queued`, ...).")
    hidden_files: int
    events_parsed: int
    events_indexed: int
    detections_by_level: dict[str, int] = Field(
        description="Sigma hits per rule level (`unknown`: a rule without one)."
    )
    ioc_hits: int


def visible_cases(state: WebState, principal: Principal) -> list[dict]:
    allowed = accessible_case_ids(state.db, principal.user)
    return [c.__dict__ for c in list_cases(state.db) if allowed is None or c.id in allowed]


@router.get("", response_model=list[CaseOut])
def cases(state: State, principal: Caller) -> list[CaseOut]:
    return [CaseOut(**c) for c in visible_cases(state, principal)]


def new_case(state: WebState, principal: Principal, name: str, description: str) -> int:
    """Create a case; a non-admin creator gets access to it."""
    try:
        actor = f"web:{principal.name}"
        case = create_case(state.db, name, description, actor, owner_id=principal.user.id)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    if principal.role is not Role.ADMIN:
        grant_case(state.db, principal.name, case.id, actor=f"web:{principal.name}")
    return case.id


@router.post("", status_code=201, response_model=NewCaseOut)
def create(body: NewCase, state: State, principal: Writer) -> NewCaseOut:
    return NewCaseOut(id=new_case(state, principal, body.name, body.description), name=body.name)


@router.get("/{case_id}", response_model=DashboardOut)
def dashboard(scope: CaseRead, state: State) -> DashboardOut:
    with state.index.use() as index:
        board = build_dashboard(state.db, index, scope.case_id)
    return DashboardOut(case_id=scope.case_id, **board.as_dict())
