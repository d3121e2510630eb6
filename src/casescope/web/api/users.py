"""Users (admins only, CSRF as every change): list, create, disable/enable, delete, reset a
password, change a role, and case grants. The rules (what ends at once, the last admin, what
a deleted user leaves behind) are in services/accounts.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.users import Role
from casescope.services import accounts
from casescope.services import users as user_service
from casescope.web.api.auth import Credentials, Password
from casescope.web.api.models import IsoTime, OkOut
from casescope.web.ids import PathId
from casescope.web.security import Admin, Principal, State

router = APIRouter(prefix="/api/users", tags=["users"])


def actor(admin: Principal) -> str:
    return f"web:{admin.name}"


@contextmanager
def refusals() -> Iterator[None]:
    """Answer a refused account change: 404 (no such user or case), 409 (the last admin), or
    400."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except accounts.LastAdminError as exc:
        raise HTTPException(409, str(exc)) from None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None


class NewUser(Credentials):
    role: Role = Role.ANALYST
    must_change_password: bool = False


class RoleChange(BaseModel):
    role: Role


class PasswordReset(BaseModel):
    password: Annotated[
        Password | None, Field(description="The new password; omitted: one is generated.")
    ] = None


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    active: bool = Field(description="False: disabled (no session or token works).")
    must_change_password: bool
    last_login_at: IsoTime | None
    timezone: str = Field(description="The IANA zone the user's pages show times in.")


def user_out(user: user_service.UserInfo) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


class PasswordResetOut(OkOut):
    password: str | None = Field(
        None, description="The generated password, shown once (absent when one was given)."
    )


@router.get("", response_model=list[UserOut])
def list_users(state: State, admin: Admin) -> list[UserOut]:
    return [user_out(u) for u in user_service.list_users(state.db)]


@router.post("", response_model=UserOut)
def create_user(body: NewUser, state: State, admin: Admin) -> UserOut:
    with refusals():
        user = user_service.create_user(
            state.db,
            body.username,
            body.password,
            body.role,
            actor=actor(admin),
            must_change_password=body.must_change_password,
        )
    return user_out(user)


@router.post("/{username}/disable", response_model=UserOut)
def disable(username: str, state: State, admin: Admin) -> UserOut:
    """Disable: the user's sessions and tokens stop working at once."""
    with refusals():
        return user_out(accounts.set_active(state.db, username, False, actor(admin)))


@router.post("/{username}/enable", response_model=UserOut)
def enable(username: str, state: State, admin: Admin) -> UserOut:
    with refusals():
        return user_out(accounts.set_active(state.db, username, True, actor(admin)))


@router.delete("/{username}", response_model=OkOut)
def delete(username: str, state: State, admin: Admin) -> OkOut:
    """Delete a user; their audit rows and event marks stay, under their name."""
    with refusals():
        accounts.delete_user(state.db, username, actor(admin))
    return OkOut()


@router.post(
    "/{username}/reset-password", response_model=PasswordResetOut, response_model_exclude_none=True
)
def reset_password(
    username: str, body: PasswordReset, state: State, admin: Admin
) -> PasswordResetOut:
    """Set a new password (generated when none is given: returned once as `password`); the
    user's sessions end and their next login must change it."""
    with refusals():
        generated = accounts.reset_password(state.db, username, body.password, actor(admin))
    return PasswordResetOut(password=generated or None)


@router.post("/{username}/role", response_model=UserOut)
def set_role(username: str, body: RoleChange, state: State, admin: Admin) -> UserOut:
    with refusals():
        return user_out(accounts.set_role(state.db, username, body.role, actor(admin)))


@router.post("/{username}/cases/{case_id}", response_model=OkOut)
def grant(username: str, case_id: PathId, state: State, admin: Admin) -> OkOut:
    with refusals():
        user_service.grant_case(state.db, username, case_id, actor=actor(admin))
    return OkOut()


@router.delete("/{username}/cases/{case_id}", response_model=OkOut)
def revoke(username: str, case_id: PathId, state: State, admin: Admin) -> OkOut:
    with refusals():
        user_service.revoke_case(state.db, username, case_id, actor=actor(admin))
    return OkOut()
