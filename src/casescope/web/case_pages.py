"""The case settings page: rename, describe, close or reopen, change the owner; and, for
admins, delete the case after typing its name. The same services as the API
(web/api/case_settings.py); refusals are shown on the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casescope.errors import CasescopeError
from casescope.model.enums import CaseStatus
from casescope.model.users import Role
from casescope.services.case_delete import delete_case, deletion_preview
from casescope.services.case_lifecycle import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    CaseBusyError,
    CaseChange,
    case_settings,
    may_manage,
    update_case,
)
from casescope.services.users import list_users
from casescope.web.api.case_settings import AdminCase, CaseManage
from casescope.web.pages import render
from casescope.web.security import CaseRead, CaseScope, State
from casescope.web.state import WebState

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, state: WebState, scope: CaseScope, error: str = "", status: int = 200
) -> HTMLResponse:
    principal = scope.principal
    settings = case_settings(state.db, scope.case_id)
    manage = principal.role.can_write and may_manage(state.db, principal.user, scope.case_id)
    preview = None
    if principal.role is Role.ADMIN:
        with state.index.use() as index:
            preview = deletion_preview(state.db, index, scope.case_id)
    response = render(
        request,
        "case_settings.html",
        principal,
        case_id=scope.case_id,
        settings=settings,
        can_manage=manage,
        users=[u.username for u in list_users(state.db) if u.active] if manage else [],
        statuses=list(CaseStatus),
        preview=preview,
        error=error,
        max_name=MAX_NAME_LENGTH,
        max_description=MAX_DESCRIPTION_LENGTH,
    )
    response.status_code = status
    return response


@router.get("/cases/{case_id}/settings")
def settings_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    return _page(request, state, scope)


@router.post("/cases/{case_id}/settings")
def settings_form(
    request: Request,
    scope: CaseManage,
    state: State,
    name: Annotated[str, Form(max_length=MAX_NAME_LENGTH)],
    status: Annotated[CaseStatus, Form()],
    description: Annotated[str, Form(max_length=MAX_DESCRIPTION_LENGTH)] = "",
    owner: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    change = CaseChange(name, description, status, owner)
    try:
        update_case(state.db, scope.case_id, change, f"web:{scope.principal.name}")
    except CaseBusyError as exc:
        return _page(request, state, scope, str(exc), 409)
    except CasescopeError as exc:
        return _page(request, state, scope, str(exc), 400)
    return RedirectResponse(f"/cases/{scope.case_id}/settings", status_code=303)


@router.post("/cases/{case_id}/delete")
def delete_form(
    request: Request,
    scope: AdminCase,
    state: State,
    confirm: Annotated[str, Form(max_length=MAX_NAME_LENGTH)] = "",
) -> Response:
    actor = f"web:{scope.principal.name}"
    try:
        with state.index.write() as index:
            report = delete_case(state.db, index, state.settings, scope.case_id, confirm, actor)
    except CaseBusyError as exc:
        return _page(request, state, scope, str(exc), 409)
    except CasescopeError as exc:
        return _page(request, state, scope, str(exc), 400)
    return render(request, "case_deleted.html", scope.principal, report=report)
