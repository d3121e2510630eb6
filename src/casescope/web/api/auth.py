"""Login, logout, the first admin (setup token), API tokens and users (admins)."""

from __future__ import annotations

import hmac
import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError
from casescope.model.users import Role
from casescope.services import auth as auth_service
from casescope.services import users as user_service
from casescope.web.clients import client_address
from casescope.web.ratelimit import LoginBusy
from casescope.web.security import (
    SESSION_COOKIE,
    Admin,
    Caller,
    State,
)
from casescope.web.state import WebState

router = APIRouter(prefix="/api", tags=["auth"])


class Credentials(BaseModel):
    username: Annotated[str, Field(max_length=100)]
    password: Annotated[str, Field(max_length=1000)]


def log_in(state: WebState, request: Request, response: Response, creds: Credentials) -> str:
    """Check credentials under the rate limit; set the session cookie; return the CSRF token."""
    limiter = request.app.state.login_limiter
    client = client_address(request, state.settings)
    wait = math.ceil(limiter.retry_after(creds.username, client))
    if wait > 0:
        raise HTTPException(
            429,
            f"too many failed logins; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    try:
        with limiter.verifying():
            user = user_service.authenticate(state.db, creds.username, creds.password)
    except LoginBusy:
        raise HTTPException(
            503, "too many logins at once; try again", headers={"Retry-After": "1"}
        ) from None
    if user is None:
        limiter.failed(creds.username, client)
        raise HTTPException(401, "wrong user name or password")
    limiter.succeeded(creds.username, client)
    session_id, csrf = auth_service.open_session(
        state.db, state.secret, user.id, state.settings.session_hours
    )
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(state.settings.session_hours * 3600),
        httponly=True,
        secure=state.settings.cookie_secure,
        samesite="strict",
        path="/",
    )
    return csrf


@router.post("/login")
def login(creds: Credentials, request: Request, response: Response, state: State) -> dict:
    csrf = log_in(state, request, response, creds)
    return {"ok": True, "csrf_token": csrf}


@router.post("/logout")
def logout(request: Request, response: Response, state: State, principal: Caller) -> dict:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        auth_service.close_session(state.db, state.secret, cookie)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me")
def me(principal: Caller) -> dict:
    return {
        "username": principal.name,
        "role": principal.role.value,
        "csrf_token": principal.csrf_token or None,
    }


class SetupRequest(Credentials):
    setup_token: str


@router.post("/setup")
def setup(body: SetupRequest, state: State) -> dict:
    """Create the first admin with the one-time token printed at first start."""
    if state.setup_token is None or user_service.count_users(state.db) > 0:
        raise HTTPException(409, "setup is done; ask an admin for an account")
    if not hmac.compare_digest(body.setup_token, state.setup_token):
        raise HTTPException(403, "wrong setup token")
    try:
        user = user_service.create_user(
            state.db, body.username, body.password, Role.ADMIN, actor="web:setup"
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    state.setup_token = None
    return {"ok": True, "username": user.username}


class TokenRequest(BaseModel):
    name: Annotated[str, Field(max_length=100)] = ""
    days: Annotated[float | None, Field(gt=0)] = 90


@router.post("/tokens")
def create_token(body: TokenRequest, state: State, principal: Caller) -> dict:
    value, info = auth_service.create_token(
        state.db, state.secret, principal.user.id, body.name, body.days, f"web:{principal.name}"
    )
    return {"token": value, "id": info.id, "expires_at": info.expires_at}


@router.get("/tokens")
def list_tokens(state: State, principal: Caller) -> list[dict]:
    return [t.__dict__ for t in auth_service.list_tokens(state.db, principal.user.id)]


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: int, state: State, principal: Caller) -> dict:
    owner = None if principal.role is Role.ADMIN else principal.user.id
    try:
        auth_service.revoke_token(state.db, token_id, owner, f"web:{principal.name}")
    except CasescopeError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"ok": True}


class NewUser(Credentials):
    role: Role = Role.ANALYST


@router.get("/users")
def list_users(state: State, admin: Admin) -> list[dict]:
    return [
        {"id": u.id, "username": u.username, "role": u.role.value, "active": u.active}
        for u in user_service.list_users(state.db)
    ]


@router.post("/users")
def create_user(body: NewUser, state: State, admin: Admin) -> dict:
    try:
        user = user_service.create_user(
            state.db, body.username, body.password, body.role, actor=f"web:{admin.name}"
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"id": user.id, "username": user.username, "role": user.role.value}


@router.post("/users/{username}/cases/{case_id}")
def grant(username: str, case_id: int, state: State, admin: Admin) -> dict:
    try:
        user_service.grant_case(state.db, username, case_id, actor=f"web:{admin.name}")
    except CasescopeError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"ok": True}


@router.delete("/users/{username}/cases/{case_id}")
def revoke(username: str, case_id: int, state: State, admin: Admin) -> dict:
    try:
        user_service.revoke_case(state.db, username, case_id, actor=f"web:{admin.name}")
    except CasescopeError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"ok": True}
