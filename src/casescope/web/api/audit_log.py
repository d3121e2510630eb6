"""The audit log a page at a time: `GET /api/audit/page` (admins), and the query
parameters the audit page takes too.

A time range is ISO 8601; one without an offset is UTC here and the viewer's own zone on
the page (where it comes from a `datetime-local` field)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError
from casescope.model.enums import AuditAction, AuditKind
from casescope.services.audit_log import (
    DEFAULT_PER_PAGE,
    MAX_ACTOR_FILTER,
    MAX_PER_PAGE,
    AuditPage,
    AuditQuery,
    AuditSort,
    AuditView,
    audit_page,
    read_time,
)
from casescope.services.evidence_list import SortOrder
from casescope.web.api.evidence_table import MAX_PAGE
from casescope.web.api.models import IsoTime
from casescope.web.ids import parse_id
from casescope.web.security import Admin, State

router = APIRouter(prefix="/api/audit", tags=["system"])
MAX_TIME_PARAM = 40


@dataclass(frozen=True)
class AuditParams:
    """The query string as sent; `query(zone)` reads its times in `zone` when they have no
    offset of their own."""

    view: AuditView
    action: str
    actor: str
    case_id: int | None
    since: str
    until: str
    sort: AuditSort
    order: SortOrder
    page: int
    per_page: int

    def query(self, zone: str = "UTC") -> AuditQuery:
        try:
            action = AuditAction.parse(self.action) if self.action else None
        except CasescopeError as exc:
            raise HTTPException(400, str(exc)) from None
        since = _moment(self.since, zone, "since")
        until = _moment(self.until, zone, "until")
        return AuditQuery(
            self.view, action, self.actor.strip(), self.case_id, since, until,
            self.sort, self.order, self.page, self.per_page,
        )  # fmt: skip


def _moment(text: str, zone: str, name: str) -> datetime | None:
    try:
        return read_time(text, zone)
    except CasescopeError as exc:
        raise HTTPException(400, f"{name}: {exc}") from None


def audit_params(
    view: Annotated[AuditView, Query(description="Which rows: people's actions, ...")] = (
        AuditView.ACTIONS
    ),
    action: Annotated[str, Query(max_length=60, description="One action (`noun.verb`).")] = "",
    actor: Annotated[
        str, Query(max_length=MAX_ACTOR_FILTER, description="Part of who did it.")
    ] = "",
    case_id: Annotated[str, Query(max_length=20, description="One case's rows (its id).")] = "",
    since: Annotated[str, Query(max_length=MAX_TIME_PARAM, description="From (ISO 8601).")] = "",
    until: Annotated[str, Query(max_length=MAX_TIME_PARAM, description="Before.")] = "",
    sort: AuditSort = AuditSort.AT,
    order: SortOrder = SortOrder.DESC,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = DEFAULT_PER_PAGE,
) -> AuditParams:
    case = parse_id(case_id) if case_id.strip() else None  # empty: the form's "any case"
    if case_id.strip() and case is None:
        raise HTTPException(400, "case_id must be a number (an id)")
    return AuditParams(view, action.strip(), actor, case, since, until, sort, order, page, per_page)


AuditParamsDep = Annotated[AuditParams, Depends(audit_params)]


class AuditEntryOut(BaseModel):
    id: int
    at: IsoTime
    actor: str = Field(description="`web:<user>`, `cli`, `system`, ...")
    action: AuditAction
    kind: AuditKind = Field(description="A person's action, casescope's own, or a step.")
    case_id: int | None
    file_id: int | None
    ok: bool
    detail: str


class AuditPageOut(BaseModel):
    rows: list[AuditEntryOut]
    total: int = Field(description="Rows that match (all pages).")
    page: int
    per_page: int
    pages: int
    by_view: dict[AuditView, int] = Field(description="Rows of each view under the filters.")


def page_out(result: AuditPage) -> AuditPageOut:
    rows = [AuditEntryOut(**row.__dict__, kind=row.action.kind) for row in result.rows]
    query = result.query
    return AuditPageOut(
        rows=rows,
        total=result.total,
        page=query.page,
        per_page=query.per_page,
        pages=result.pages,
        by_view=result.by_view,
    )


@router.get("/page", response_model=AuditPageOut)
def audit_log_page(state: State, admin: Admin, params: AuditParamsDep) -> AuditPageOut:
    """Audit rows a page at a time, newest first unless sorted otherwise: `view` picks
    people's actions (the default), casescope's own, pipeline steps, or all."""
    return page_out(audit_page(state.db, params.query()))
