"""The Jobs page of a case: its bulk operations, live progress bars, and their controls.

Progress bars follow `/api/cases/{id}/operations/{op}/events` (Server-Sent Events) through
`static/jobs.js`; the buttons are plain forms (CSRF field), so they work without scripts.
"""

from __future__ import annotations

from enum import StrEnum

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casescope.services import operations as ops
from casescope.web.api.jobs import change_operation, retry_failed
from casescope.web.ids import PathId
from casescope.web.pages import render
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State
from casescope.web.state import WebState

router = APIRouter(include_in_schema=False)


class Action(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY = "retry"


_CHANGES = {Action.PAUSE: ops.pause, Action.RESUME: ops.resume, Action.CANCEL: ops.cancel}


def _page(
    request: Request, state: WebState, scope: CaseScope, error: str = "", status: int = 200
) -> HTMLResponse:
    response = render(
        request,
        "jobs.html",
        scope.principal,
        case_id=scope.case_id,
        operations=ops.list_operations(state.db, scope.case_id, 100),
        error=error,
    )
    response.status_code = status
    return response


@router.get("/cases/{case_id}/jobs")
def jobs_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    return _page(request, state, scope)


@router.post("/cases/{case_id}/jobs/{operation_id}/{action}")
def job_action(
    request: Request,
    operation_id: PathId,
    action: Action,
    scope: CaseWrite,
    state: State,
) -> Response:
    try:
        if action is Action.RETRY:
            retry_failed(state, scope, operation_id)
        else:
            change_operation(state, scope, operation_id, _CHANGES[action])
            if action is Action.RESUME:
                state.kick_workers()
    except HTTPException as exc:
        return _page(request, state, scope, f"{action.value}: {exc.detail}", exc.status_code)
    return RedirectResponse(f"/cases/{scope.case_id}/jobs", status_code=303)
