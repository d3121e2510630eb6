"""The user's settings page: the time zone every page shows times in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casescope.services.users import time_zones
from casescope.web.api.preferences import change_timezone
from casescope.web.pages import render
from casescope.web.security import Caller, State

router = APIRouter(include_in_schema=False)


def _local(path: str) -> str:
    """`path` when it is a path on this site, else the settings page (no open redirect)."""
    ok = path.startswith("/") and not path.startswith(("//", "/\\")) and "\n" not in path
    return path if ok else "/settings"


@router.get("/settings")
def settings_page(request: Request, principal: Caller, back: str = "") -> HTMLResponse:
    return render(
        request,
        "settings.html",
        principal,
        zones=sorted(time_zones()),
        back=_local(back) if back else "",
        now=datetime.now(UTC),
    )


@router.post("/settings/timezone")
def timezone_form(
    state: State,
    principal: Caller,
    timezone: Annotated[str, Form(max_length=64)],
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    change_timezone(state, principal, timezone)
    return RedirectResponse(_local(back) if back else "/settings", status_code=303)
