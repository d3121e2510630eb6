"""Admin pages for users and case grants: thin forms over the admin API (web/api/users.py),
so a page action and its API route are one piece of code.

Every form posts its CSRF field; a refused change re-renders the page with why and the API's
status (404, 409 for the last admin, 400). A reset password made by the server is shown once,
on a page the browser is told not to store. Deleting a user asks for the name typed again.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casescope.model.users import Role
from casescope.services.grants import case_names, list_grants
from casescope.services.users import MAX_PASSWORD_LENGTH, list_users
from casescope.web.api import users as users_api
from casescope.web.ids import MAX_ID
from casescope.web.pages import render
from casescope.web.security import Admin, Principal, State
from casescope.web.state import WebState

router = APIRouter(include_in_schema=False)

UserName = Annotated[str, Form(min_length=1, max_length=100)]
FormId = Annotated[int, Form(ge=1, le=MAX_ID)]
NO_STORE = {"Cache-Control": "no-store"}


class UserAction(StrEnum):
    DISABLE = "disable"
    ENABLE = "enable"
    DELETE = "delete"
    RESET_PASSWORD = "reset-password"
    ROLE = "role"


def _users_page(
    request: Request,
    state: WebState,
    admin: Principal,
    *,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    page = render(
        request,
        "admin_users.html",
        admin,
        users=list_users(state.db),
        roles=list(Role),
        error=error,
        section="users",
    )
    page.status_code = status
    return page


@router.get("/admin")
def admin_home(admin: Admin) -> Response:
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/users")
def users_page(request: Request, state: State, admin: Admin) -> HTMLResponse:
    return _users_page(request, state, admin)


@router.post("/admin/users")
def create_user(
    request: Request,
    state: State,
    admin: Admin,
    username: UserName,
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)],
    role: Annotated[Role, Form()] = Role.ANALYST,
    must_change_password: Annotated[bool, Form()] = False,
) -> Response:
    body = users_api.NewUser(
        username=username, password=password, role=role, must_change_password=must_change_password
    )
    try:
        users_api.create_user(body, state, admin)
    except HTTPException as exc:
        return _users_page(request, state, admin, error=str(exc.detail), status=exc.status_code)
    return RedirectResponse("/admin/users", status_code=303)


def _apply(
    state: WebState, admin: Principal, action: UserAction, username: str, role: Role | None
) -> str | None:
    """Do `action` to `username` through the admin API; a generated password, if any."""
    if action is UserAction.DISABLE:
        users_api.disable(username, state, admin)
    elif action is UserAction.ENABLE:
        users_api.enable(username, state, admin)
    elif action is UserAction.DELETE:
        users_api.delete(username, state, admin)
    elif action is UserAction.RESET_PASSWORD:
        return users_api.reset_password(username, users_api.PasswordReset(), state, admin).password
    else:
        if role is None:
            raise HTTPException(400, "choose a role")
        users_api.set_role(username, users_api.RoleChange(role=role), state, admin)
    return None


@router.post("/admin/users/{action}")
def user_action(
    request: Request,
    action: UserAction,
    state: State,
    admin: Admin,
    username: UserName,
    role: Annotated[Role | None, Form()] = None,
    confirm: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """One change to one user; delete needs the user name typed again (`confirm`)."""
    if action is UserAction.DELETE and confirm != username:
        error = f"type the user name {username!r} to delete it"
        return _users_page(request, state, admin, error=error, status=400)
    try:
        generated = _apply(state, admin, action, username, role)
    except HTTPException as exc:
        return _users_page(request, state, admin, error=str(exc.detail), status=exc.status_code)
    if generated is None:
        return RedirectResponse("/admin/users", status_code=303)
    return _with_reset(request, state, admin, username, generated)


def _with_reset(
    request: Request, state: WebState, admin: Principal, username: str, password: str
) -> HTMLResponse:
    """The users page showing a generated password once, not to be stored by the browser."""
    page = render(
        request,
        "admin_users.html",
        admin,
        users=list_users(state.db),
        roles=list(Role),
        reset_user=username,
        reset_password=password,
        section="users",
    )
    page.headers.update(NO_STORE)
    return page


def _grants_page(
    request: Request, state: WebState, admin: Principal, *, error: str = "", status: int = 200
) -> HTMLResponse:
    others = [u for u in list_users(state.db) if u.role is not Role.ADMIN]
    page = render(
        request,
        "admin_grants.html",
        admin,
        grants=list_grants(state.db),
        users=others,
        cases=case_names(state.db),
        error=error,
        section="grants",
    )
    page.status_code = status
    return page


def _change_grant(
    change: Callable[..., object],
    request: Request,
    state: State,
    admin: Admin,
    username: str,
    case_id: int,
) -> Response:
    """Grant or revoke through the API's route; a refusal shows the page again with why."""
    try:
        change(username, case_id, state, admin)
    except HTTPException as exc:
        return _grants_page(request, state, admin, error=str(exc.detail), status=exc.status_code)
    return RedirectResponse("/admin/grants", status_code=303)


@router.get("/admin/grants")
def grants_page(request: Request, state: State, admin: Admin) -> HTMLResponse:
    return _grants_page(request, state, admin)


@router.post("/admin/grants")
def grant(
    request: Request,
    state: State,
    admin: Admin,
    username: UserName,
    case_id: FormId,
) -> Response:
    return _change_grant(users_api.grant, request, state, admin, username, case_id)


@router.post("/admin/grants/revoke")
def revoke(
    request: Request,
    state: State,
    admin: Admin,
    username: UserName,
    case_id: FormId,
) -> Response:
    return _change_grant(users_api.revoke, request, state, admin, username, case_id)
