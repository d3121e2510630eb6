"""The page to change one's own password (the only page open to a user who must change it
after an admin's reset). The admin pages for users and tokens build on the same API
(web/api/users.py, web/api/tokens.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casescope.services.users import MAX_PASSWORD_LENGTH
from casescope.web.api.auth import PasswordChange, change_own_password
from casescope.web.pages import render
from casescope.web.security import Pending, State

router = APIRouter(include_in_schema=False)

PasswordField = Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)]


def _form(request: Request, principal: Pending, error: str = "", status: int = 200) -> Response:
    page = render(
        request,
        "password.html",
        principal,
        error=error,
        forced=principal.user.must_change_password,
    )
    page.status_code = status
    return page


@router.get("/password")
def password_page(request: Request, principal: Pending) -> HTMLResponse:
    return _form(request, principal)  # type: ignore[return-value]


@router.post("/password")
def password_submit(
    request: Request,
    state: State,
    principal: Pending,
    current_password: PasswordField,
    new_password: PasswordField,
    confirm_password: PasswordField,
) -> Response:
    if new_password != confirm_password:
        return _form(request, principal, "the two new passwords differ", 400)
    body = PasswordChange(current_password=current_password, new_password=new_password)
    try:
        change_own_password(state, request, principal, body)
    except HTTPException as exc:
        return _form(request, principal, str(exc.detail), exc.status_code)
    return RedirectResponse("/", status_code=303)
