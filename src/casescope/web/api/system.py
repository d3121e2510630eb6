"""Health, Prometheus metrics, the system view and the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from casescope.services.audit import audit_rows
from casescope.services.system import collect_system, prometheus_text
from casescope.web.ids import MAX_ID
from casescope.web.security import Admin, Caller, State
from casescope.web.state import WebState

router = APIRouter(tags=["system"])


def system_report(state: WebState) -> dict:
    with state.index.use() as index:
        return collect_system(state.db, state.settings, index).as_dict()


@router.get("/health")
def health(state: State) -> JSONResponse:
    """Store, DB, workers and disk; 503 when the DB or the index cannot answer."""
    report = system_report(state)
    body = {
        "ok": report["ok"],
        "db": report["db"],
        "store": report["store"],
        "workers": len(report["workers"]),
        "disk_free_bytes": report["disk_free_bytes"],
    }
    return JSONResponse(body, status_code=200 if report["ok"] else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: State) -> str:
    """Prometheus text format."""
    with state.index.use() as index:
        return prometheus_text(state.db, index)


@router.get("/api/system")
def system(state: State, principal: Caller) -> dict:
    return system_report(state)


@router.get("/api/audit")
def audit_log(
    state: State,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    case_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    action: str | None = None,
) -> list[dict]:
    """The newest audit rows, of one case and one action (e.g. `intake_refused`) if given."""
    return audit_rows(state.db, limit, case_id, action)
