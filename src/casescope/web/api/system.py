"""Health, Prometheus metrics, the system view and the audit log (admins).

`/health` and `/metrics` never collect anything themselves: they read the health refresher's
snapshot (web/health.py), so anonymous callers cannot make anyone wait. Anonymous `/health`
is only `{"status": "ok"|"degraded"}` with 200 or 503, and a `detail` while the metadata DB
is unreachable; its details and `/metrics` need an admin's session or token, or a client
address in `CASESCOPE_METRICS_ALLOW`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from casescope.errors import CasescopeError
from casescope.jobs.registry import HostInfo, WorkerInfo
from casescope.model.enums import AuditAction
from casescope.model.outage import is_outage
from casescope.model.users import Role
from casescope.services.audit import audit_rows
from casescope.services.system import ComponentStatus, memory_warning, scoped_report
from casescope.services.users import accessible_case_ids
from casescope.web.api.models import IsoTime
from casescope.web.clients import in_metrics_allow_list
from casescope.web.health import HealthMonitor, Snapshot
from casescope.web.ids import MAX_ID
from casescope.web.outage import DB_UNREACHABLE, RETRY_AFTER_SECONDS
from casescope.web.security import (
    SESSION_COOKIE,
    Admin,
    Caller,
    Principal,
    State,
    known_principal,
)
from casescope.web.state import WebState

router = APIRouter(tags=["system"])


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"


class Access(StrEnum):
    """What a caller of `/health` and `/metrics` may read."""

    ANONYMOUS = "anonymous"
    USER = "user"
    DETAILS = "details"


class PartCheckOut(BaseModel):
    part: str
    ok: bool
    detail: str = Field(description="Reachable, schema or DDL version, free space.")


class HealthOut(BaseModel):
    """`status` for everyone; the rest for admins and `CASESCOPE_METRICS_ALLOW` clients."""

    status: HealthStatus
    detail: str | None = Field(
        default=None, description="Why it is degraded, for everyone: the metadata DB is down."
    )
    ok: bool | None = Field(default=None, description="False: degraded (as `status`).")
    db: str | None = Field(default=None, description="`ok`, `error` or `unreachable`.")
    store: str | None = Field(default=None, description="The event index: `ok` or `error`.")
    workers: int | None = Field(default=None, description="Live workers.")
    disk_free_bytes: int | None = None
    age_seconds: float | None = Field(default=None, description="Age of the figures.")
    mode: str | None = Field(default=None, description="`embedded` or `team` (docs/deploy.md).")
    db_dialect: str | None = Field(default=None, description="`sqlite` or `postgresql`.")
    index_transport: str | None = Field(
        default=None, description="`embedded`, `http`, `https` or `chdb` (CASESCOPE_INDEX_URL)."
    )
    checks: list[PartCheckOut] | None = Field(
        default=None, description="Each part: the metadata DB, the event index, the home."
    )


class CaseWorkerOut(BaseModel):
    """A worker as users other than admins see it: which file of their cases it is on."""

    case_id: int
    current_file_id: int


class PoolFailureOut(BaseModel):
    at: IsoTime
    detail: str = Field(description="Why the worker pool fails to start (admins: its error).")


class SystemOut(BaseModel):
    ok: bool
    db: str = Field(description="`ok` or `error`.")
    store: str = Field(description="The event index: `ok` or `error`.")
    events_indexed: int
    workers: list[WorkerInfo | CaseWorkerOut] = Field(
        description="Admins: every live worker; others: the workers on their cases' files."
    )
    hosts: list[HostInfo] | None = Field(
        default=None,
        description="Admins: each host with live workers (CASESCOPE_HOST_NAME), its workers "
        "and the files they hold; others: null.",
    )
    queue: dict[str, int] = Field(description="Jobs per state (others: of their cases).")
    disk_total_bytes: int
    disk_free_bytes: int
    home_used_bytes: int = Field(description="Evidence, segments, the DB and the index.")
    memory_used_mb: float
    memory_limit_mb: int = Field(description="`CASESCOPE_MEMORY_LIMIT_MB`.")
    memory_warning: bool = Field(description="Memory used is above 80% of the limit.")
    pool_failure: PoolFailureOut | None = Field(
        description="Why no worker runs while files wait (null: none failed)."
    )
    age_seconds: float = Field(description="Age of the figures.")


class AuditRowOut(BaseModel):
    id: int
    at: IsoTime
    actor: str = Field(description="`web:<user>`, `cli`, `worker:<id>`, `system`, ...")
    action: AuditAction
    case_id: int | None
    file_id: int | None
    ok: bool
    detail: str


def _monitor(request: Request) -> HealthMonitor:
    return request.app.state.health


async def details_access(request: Request) -> Access:
    """Allow-listed address or admin: details; another logged-in user; or anonymous."""
    state: WebState = request.app.state.web
    if in_metrics_allow_list(request, state.settings):
        return Access.DETAILS
    if not (request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE)):
        return Access.ANONYMOUS  # no worker thread for the anonymous many
    try:
        principal = await run_in_threadpool(known_principal, request, state)
    except SQLAlchemyError as exc:  # sessions are in the metadata DB: down, none is known
        if not is_outage(exc):
            raise
        return Access.ANONYMOUS
    if principal is None:
        return Access.ANONYMOUS
    return Access.DETAILS if principal.role is Role.ADMIN else Access.USER


@router.get(
    "/health",
    response_model=HealthOut,
    response_model_exclude_none=True,
    responses={503: {"model": HealthOut, "description": "Degraded."}},
)
async def health(request: Request, response: Response) -> HealthOut:
    """`{"status"}`, 503 when degraded; with details for admins and allow-listed clients."""
    snapshot = await _monitor(request).snapshot()
    healthy = snapshot is not None and snapshot.healthy
    status = HealthStatus.OK if healthy else HealthStatus.DEGRADED
    response.status_code = 200 if healthy else 503
    detail = None
    if snapshot is not None and snapshot.report.db is ComponentStatus.UNREACHABLE:
        detail = DB_UNREACHABLE
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    if snapshot is None or await details_access(request) is not Access.DETAILS:
        return HealthOut(status=status, detail=detail)
    report, deployment = snapshot.report, snapshot.deployment
    return HealthOut(
        status=status,
        detail=detail,
        ok=healthy,
        db=report.db,
        store=report.store,
        workers=len(report.workers),
        disk_free_bytes=report.disk_free_bytes,
        age_seconds=round(snapshot.age, 1),
        mode=deployment.mode,
        db_dialect=deployment.db_dialect,
        index_transport=deployment.index_transport,
        checks=[PartCheckOut(part=c.part, ok=c.ok, detail=c.detail) for c in deployment.checks],
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus text format (admins and `CASESCOPE_METRICS_ALLOW` addresses)."""
    access = await details_access(request)
    if access is Access.ANONYMOUS:
        detail = "login required, or a client address in CASESCOPE_METRICS_ALLOW"
        return JSONResponse({"detail": detail}, status_code=401)
    if access is Access.USER:
        return JSONResponse({"detail": "admins only"}, status_code=403)
    snapshot = await _monitor(request).snapshot()
    if snapshot is None:
        return JSONResponse({"detail": "no figures yet"}, status_code=503)
    return PlainTextResponse(snapshot.metrics)


def _view(state: WebState, snapshot: Snapshot, principal: Principal) -> dict:
    data = scoped_report(state.db, snapshot.report, accessible_case_ids(state.db, principal.user))
    limit = state.settings.memory_limit_mb
    data |= {
        "memory_limit_mb": limit,
        "memory_warning": memory_warning(data["memory_used_mb"], limit),
        "age_seconds": round(snapshot.age, 1),
    }
    return data


async def system_view(request: Request, state: WebState, principal: Principal) -> dict:
    """The system report as this user may see it (web/health.py's snapshot)."""
    snapshot = await _monitor(request).snapshot()
    if snapshot is None:
        raise HTTPException(503, "no figures yet", headers={"Retry-After": "1"})
    return await run_in_threadpool(_view, state, snapshot, principal)


@router.get("/api/system", response_model=SystemOut)
async def system(request: Request, state: State, principal: Caller) -> SystemOut:
    """Everything for admins; others see only their cases' jobs and no worker details."""
    return SystemOut.model_validate(await system_view(request, state, principal))


@router.get("/api/audit", response_model=list[AuditRowOut])
def audit_log(
    state: State,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    case_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    action: str | None = None,
) -> list[AuditRowOut]:
    """The newest audit rows, of one case and one action (`noun.verb`, e.g. `intake.refused`)
    if given; the older names (`intake_refused`, `indexing`, `export`...) are deprecated but
    still taken, and an unknown one is a 400 that lists the actions."""
    try:
        wanted = AuditAction.parse(action) if action is not None else None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    return [AuditRowOut(**row) for row in audit_rows(state.db, limit, case_id, wanted)]
