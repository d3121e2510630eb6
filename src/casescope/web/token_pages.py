"""The API tokens page, for every user: their own tokens (name, scope, expiry, last use),
make one (lifetime in days, read-only or read-write scope) and revoke one; an admin also sees
and revokes every user's tokens. Thin forms over web/api/tokens.py.

A new token's secret is shown once, on a page the browser is told not to store.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casescope.model.users import Role, TokenScope
from casescope.services.tokens import DEFAULT_TOKEN_DAYS, list_tokens
from casescope.web.api import tokens as tokens_api
from casescope.web.ids import PathId
from casescope.web.pages import render
from casescope.web.security import Caller, Principal, State
from casescope.web.state import WebState

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}


def _page(
    request: Request,
    state: WebState,
    principal: Principal,
    *,
    error: str = "",
    status: int = 200,
    new_token: tokens_api.NewTokenOut | None = None,
) -> HTMLResponse:
    admin = principal.role is Role.ADMIN
    page = render(
        request,
        "tokens.html",
        principal,
        mine=list_tokens(state.db, principal.user.id),
        everyone=list_tokens(state.db, None) if admin else [],
        scopes=list(TokenScope),
        default_days=min(DEFAULT_TOKEN_DAYS, state.settings.token_max_days),
        max_days=state.settings.token_max_days,
        new_token=new_token,
        now=time.time(),
        error=error,
        section="tokens",
    )
    page.status_code = status
    if new_token is not None:
        page.headers.update(NO_STORE)
    return page


@router.get("/tokens")
def tokens_page(request: Request, state: State, principal: Caller) -> HTMLResponse:
    return _page(request, state, principal)


@router.post("/tokens")
def create_token(
    request: Request,
    state: State,
    principal: Caller,
    days: Annotated[float, Form(gt=0, le=36_500)],
    name: Annotated[str, Form(max_length=100)] = "",
    scope: Annotated[TokenScope, Form()] = TokenScope.READ,
) -> Response:
    """Make a token for the caller and show its secret once."""
    body = tokens_api.TokenRequest(name=name, days=days, scope=scope)
    try:
        made = tokens_api.create_token(body, state, principal)
    except HTTPException as exc:
        return _page(request, state, principal, error=str(exc.detail), status=exc.status_code)
    return _page(request, state, principal, new_token=made)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: PathId, state: State, principal: Caller) -> Response:
    """Revoke one of the caller's tokens (an admin: anyone's)."""
    try:
        tokens_api.revoke_token(token_id, state, principal)
    except HTTPException as exc:
        return _page(request, state, principal, error=str(exc.detail), status=exc.status_code)
    return RedirectResponse("/tokens", status_code=303)
