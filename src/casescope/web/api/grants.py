"""Case grants (admins only): who, besides the admins, may open which case. Granting and
revoking are `POST`/`DELETE /api/users/{username}/cases/{case_id}` (web/api/users.py)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from casescope.model.users import Role
from casescope.services.grants import list_grants
from casescope.web.security import Admin, State

router = APIRouter(prefix="/api/grants", tags=["users"])


class GrantOut(BaseModel):
    username: str
    role: Role
    active: bool = Field(description="False: the user is disabled (the grant stays).")
    case_id: int
    case_name: str


@router.get("", response_model=list[GrantOut])
def grants(state: State, admin: Admin) -> list[GrantOut]:
    """Every case grant, by user name then case id (admins need none)."""
    return [GrantOut.model_validate(g, from_attributes=True) for g in list_grants(state.db)]
