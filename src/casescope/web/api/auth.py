"""Login, logout, who am I, changing one's own password, and the first admin (setup token).

Logins, failed logins and logouts are audited (`user.login`, `user.login_failed`,
`user.logout`) with the client address and the user name, never a password.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError
from casescope.model.users import Role, TokenScope
from casescope.services import accounts
from casescope.services import auth as auth_service
from casescope.services import users as user_service
from casescope.services.users import MAX_PASSWORD_LENGTH
from casescope.web.api.models import OkOut
from casescope.web.clients import client_address
from casescope.web.ratelimit import LoginBusy
from casescope.web.security import SESSION_COOKIE, Pending, Principal, State
from casescope.web.state import WebState

router = APIRouter(prefix="/api", tags=["auth"])

Password = Annotated[str, Field(max_length=MAX_PASSWORD_LENGTH)]
#: Longer than any setup token `serve` prints (32 characters), short enough to refuse junk.
MAX_SETUP_TOKEN_LENGTH = 200


class Credentials(BaseModel):
    username: Annotated[str, Field(max_length=100)]
    password: Password


class LoginOut(OkOut):
    csrf_token: str = Field(description="Send as `X-CSRF-Token` on every change.")
    must_change_password: bool = Field(
        description="Only `/api/me`, `/api/me/password` and `/api/logout` answer until it is."
    )


class MeOut(BaseModel):
    username: str
    role: Role
    csrf_token: str | None = Field(description="The session's CSRF token; null with a token.")
    must_change_password: bool
    token_scope: TokenScope | None = Field(description="The API token's scope; null: a session.")


class SetupOut(OkOut):
    username: str = Field(description="The first admin, created.")


def log_in(state: WebState, request: Request, response: Response, creds: Credentials) -> LoginOut:
    """Check credentials under the rate limit and set the session cookie; returns the CSRF
    token and whether the user must change their password before anything else."""
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
        accounts.record_failed_login(state.db, creds.username, client)
        raise HTTPException(401, "wrong user name or password")
    limiter.succeeded(creds.username, client)
    session_id, csrf = auth_service.open_session(
        state.db, state.secret, user.id, state.settings.session_hours
    )
    accounts.record_login(state.db, user.id, client)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(state.settings.session_hours * 3600),
        httponly=True,
        secure=state.settings.cookie_secure,
        samesite="strict",
        path="/",
    )
    return LoginOut(csrf_token=csrf, must_change_password=user.must_change_password)


def log_out(state: WebState, request: Request, principal: Principal) -> None:
    """End the request's session (if it came with one) and audit the logout."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        auth_service.close_session(state.db, state.secret, cookie)
        accounts.record_logout(state.db, principal.name, client_address(request, state.settings))


@router.post("/login", response_model=LoginOut)
def login(creds: Credentials, request: Request, response: Response, state: State) -> LoginOut:
    """Log in; then send the returned `csrf_token` as `X-CSRF-Token` on every change. With
    `must_change_password` true, only `/api/me`, `/api/me/password` and `/api/logout` answer."""
    return log_in(state, request, response, creds)


@router.post("/logout", response_model=OkOut)
def logout(request: Request, response: Response, state: State, principal: Pending) -> OkOut:
    log_out(state, request, principal)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return OkOut()


@router.get("/me", response_model=MeOut)
def me(principal: Pending) -> MeOut:
    return MeOut(
        username=principal.name,
        role=principal.role,
        csrf_token=principal.csrf_token or None,
        must_change_password=principal.user.must_change_password,
        token_scope=principal.token_scope,
    )


class PasswordChange(BaseModel):
    current_password: Password
    new_password: Password


def change_own_password(
    state: WebState, request: Request, principal: Principal, body: PasswordChange
) -> None:
    """Change the caller's password (sessions only); ends their other sessions."""
    if principal.via_token:
        raise HTTPException(403, "a password is changed from a logged-in session, not a token")
    cookie = request.cookies.get(SESSION_COOKIE, "")
    keep = auth_service.keyed_hash(state.secret, cookie) if cookie else None
    try:
        accounts.change_password(
            state.db, principal.user.id, body.current_password, body.new_password, keep
        )
    except accounts.WrongPasswordError as exc:
        raise HTTPException(403, str(exc)) from None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None


@router.post("/me/password", response_model=OkOut)
def change_password(
    body: PasswordChange, request: Request, state: State, principal: Pending
) -> OkOut:
    """Change your password: every other session of yours ends; tokens stay."""
    change_own_password(state, request, principal, body)
    return OkOut()


class SetupRequest(Credentials):
    setup_token: Annotated[str, Field(max_length=MAX_SETUP_TOKEN_LENGTH)]


@router.post("/setup", response_model=SetupOut)
def setup(body: SetupRequest, state: State) -> SetupOut:
    """Create the first admin with the one-time token printed at first start."""
    if not auth_service.setup_open(state.db):
        raise HTTPException(409, "setup is done; ask an admin for an account")
    if not auth_service.setup_token_valid(state.db, state.secret, body.setup_token):
        raise HTTPException(403, "wrong setup token")
    try:
        user = user_service.create_user(
            state.db, body.username, body.password, Role.ADMIN, actor="web:setup"
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    auth_service.end_setup(state.db)
    state.setup_token = None
    return SetupOut(username=user.username)
