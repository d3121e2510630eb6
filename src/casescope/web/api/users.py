"""Users (admins only, CSRF as every change): list, create, disable/enable, delete, reset a
password, change a role, and case grants. The rules (what ends at once, the last admin, what
a deleted user leaves behind) are in services/accounts.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.users import Role
from casescope.services import accounts
from casescope.services import users as user_service
from casescope.web.api.auth import Credentials, Password
from casescope.web.ids import PathId
from casescope.web.security import Admin, Principal, State

router = APIRouter(prefix="/api/users", tags=["users"])


def actor(admin: Principal) -> str:
    return f"web:{admin.name}"


def refused(exc: CasescopeError) -> HTTPException:
    """The HTTP answer to a refused account change."""
    if isinstance(exc, NotFoundError):
        return HTTPException(404, str(exc))
    if isinstance(exc, accounts.LastAdminError):
        return HTTPException(409, str(exc))
    return HTTPException(400, str(exc))


class NewUser(Credentials):
    role: Role = Role.ANALYST
    must_change_password: bool = False


class RoleChange(BaseModel):
    role: Role


class PasswordReset(BaseModel):
    password: Annotated[
        Password | None, Field(description="The new password; omitted: one is generated.")
    ] = None


@router.get("")
def list_users(state: State, admin: Admin) -> list[dict]:
    return [u.as_dict() for u in user_service.list_users(state.db)]


@router.post("")
def create_user(body: NewUser, state: State, admin: Admin) -> dict:
    try:
        user = user_service.create_user(
            state.db,
            body.username,
            body.password,
            body.role,
            actor=actor(admin),
            must_change_password=body.must_change_password,
        )
    except CasescopeError as exc:
        raise refused(exc) from None
    return user.as_dict()


@router.post("/{username}/disable")
def disable(username: str, state: State, admin: Admin) -> dict:
    """Disable: the user's sessions and tokens stop working at once."""
    try:
        return accounts.set_active(state.db, username, False, actor(admin)).as_dict()
    except CasescopeError as exc:
        raise refused(exc) from None


@router.post("/{username}/enable")
def enable(username: str, state: State, admin: Admin) -> dict:
    try:
        return accounts.set_active(state.db, username, True, actor(admin)).as_dict()
    except CasescopeError as exc:
        raise refused(exc) from None


@router.delete("/{username}")
def delete(username: str, state: State, admin: Admin) -> dict:
    """Delete a user; their audit rows and event marks stay, under their name."""
    try:
        accounts.delete_user(state.db, username, actor(admin))
    except CasescopeError as exc:
        raise refused(exc) from None
    return {"ok": True}


@router.post("/{username}/reset-password")
def reset_password(username: str, body: PasswordReset, state: State, admin: Admin) -> dict:
    """Set a new password (generated when none is given: returned once as `password`); the
    user's sessions end and their next login must change it."""
    try:
        generated = accounts.reset_password(state.db, username, body.password, actor(admin))
    except CasescopeError as exc:
        raise refused(exc) from None
    return {"ok": True, **({"password": generated} if generated else {})}


@router.post("/{username}/role")
def set_role(username: str, body: RoleChange, state: State, admin: Admin) -> dict:
    try:
        return accounts.set_role(state.db, username, body.role, actor(admin)).as_dict()
    except CasescopeError as exc:
        raise refused(exc) from None


@router.post("/{username}/cases/{case_id}")
def grant(username: str, case_id: PathId, state: State, admin: Admin) -> dict:
    try:
        user_service.grant_case(state.db, username, case_id, actor=actor(admin))
    except CasescopeError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"ok": True}


@router.delete("/{username}/cases/{case_id}")
def revoke(username: str, case_id: PathId, state: State, admin: Admin) -> dict:
    try:
        user_service.revoke_case(state.db, username, case_id, actor=actor(admin))
    except CasescopeError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"ok": True}
