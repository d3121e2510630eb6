"""The audit log page (admins): tabs for people's actions, casescope's own and pipeline
steps; filters, sorting and paging by the query string (the same as `/api/audit/page`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from casescope.model.enums import AuditAction
from casescope.services.audit_log import AuditView, audit_page
from casescope.web.api.audit_log import AuditParamsDep
from casescope.web.pages import render
from casescope.web.security import Admin, State
from casescope.web.table_links import TableLinks

router = APIRouter(include_in_schema=False)


def _local_input(value: str) -> str:
    """A `datetime-local` field's value: what was typed, if it has that form (else empty)."""
    return value if len(value) <= 19 and "T" in value else ""


@router.get("/audit")
def audit_log_page(
    request: Request, state: State, admin: Admin, params: AuditParamsDep
) -> HTMLResponse:
    zone = admin.user.timezone or "UTC"
    result = audit_page(state.db, params.query(zone))
    return render(
        request,
        "audit.html",
        admin,
        log=result,
        params=params,
        views=list(AuditView),
        actions=list(AuditAction),
        since_input=_local_input(params.since),
        until_input=_local_input(params.until),
        links=TableLinks(request, "/audit"),
    )
