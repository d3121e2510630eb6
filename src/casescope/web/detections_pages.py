"""Detection pages: the ATT&CK matrix and the rules that fired, the detection timeline, and
one rule with its hits. Thin views over the same functions as web/api/detections.py; every
filter is in the URL, and a filter value that is not one shows its reason (400) in the page.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from casescope.detect.attack import TACTICS, tactic, technique_url
from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.services import attack_matrix as am
from casescope.services import detection_timeline as dt
from casescope.services.detections import (
    NONE,
    DetectionFilter,
    DetectionFilterError,
    RuleSort,
    case_hosts,
    first_few,
    rule_hits,
)
from casescope.services.ioc_hits import HitFilter, hit_summary
from casescope.services.rule_details import rule_details
from casescope.web.api.detections import RULES_PAGE, DetectionParams, Params, prepare
from casescope.web.ids import PathId
from casescope.web.pages import render
from casescope.web.security import CaseRead, CaseScope, State
from casescope.web.state import WebState

router = APIRouter(include_in_schema=False)

#: Hits per page of the timeline and of a rule's page.
HITS_PAGE = 100
#: Techniques shown under each tactic of the matrix (all of them with `full=true`): at
#: 1366x768 this keeps the rules table in reach.
MATRIX_CELLS = 12
Cursor = Annotated[str | None, Query(max_length=200)]


def _common(state: WebState, scope: CaseScope, params: DetectionParams) -> dict[str, object]:
    """What every detection page shows: the filter form's values and choices."""
    return {
        "case_id": scope.case_id,
        "params": params,
        "levels": [level.value for level in SigmaLevel],
        "statuses": [status.value for status in SigmaStatus],
        "tactics": TACTICS,
        "hosts": case_hosts(state.db, scope.case_id),
        "technique_url": technique_url,
        "first_few": first_few,
        "unnamed": NONE,
    }


def _page(
    request: Request, scope: CaseScope, name: str, context: dict, error: str = ""
) -> HTMLResponse:
    response = render(request, name, scope.principal, error=error, **context)
    if error:
        response.status_code = 400
    return response


def _filters(params: DetectionParams, scope: CaseScope) -> tuple[DetectionFilter | None, str]:
    try:
        return params.filters(scope.case_id), ""
    except DetectionFilterError as exc:
        return None, str(exc)


@router.get("/cases/{case_id}/detections")
def detections_page(
    request: Request,
    scope: CaseRead,
    state: State,
    params: Params,
    sort: RuleSort = RuleSort.HITS,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    full: bool = False,
) -> HTMLResponse:
    """The ATT&CK matrix (each tactic's top techniques, or all with `full`), the rules that
    fired (filtered, sorted, paged) and IOC hits."""
    prepare(state, scope.case_id)
    context = _common(state, scope, params)
    filters, error = _filters(params, scope)
    if filters is not None:
        matrix = am.build_matrix(rule_hits(state.db, filters.without_attack()))
        items = rule_hits(state.db, filters, sort)
        context.update(
            matrix=matrix,
            rules=items[offset : offset + RULES_PAGE],
            total_rules=len(items),
            total_hits=sum(i.hits for i in items),
            selected_tactic=tactic(filters.tactic) if filters.tactic else None,
            selected=filters,
        )
    hits = [
        {**asdict(h), "type": h.type.value, "qs": f"ioc_id={h.ioc_id}"}
        for h in hit_summary(state.db, HitFilter(scope.case_id))
    ]
    context.update(
        ioc_hits=hits,
        sort=sort,
        offset=offset,
        page_size=RULES_PAGE,
        full=full,
        matrix_cells=MATRIX_CELLS,
    )
    return _page(request, scope, "detections.html", context, error)


@router.get("/cases/{case_id}/detections/timeline")
def timeline_page(
    request: Request, scope: CaseRead, state: State, params: Params, cursor: Cursor = None
) -> HTMLResponse:
    """Every hit in time order (time, computer, level, rule, summary): the Hayabusa view."""
    prepare(state, scope.case_id)
    context = _common(state, scope, params)
    filters, error = _filters(params, scope)
    rows, following = [], None
    try:
        after = dt.TimelineCursor.decode(cursor) if cursor else None
    except DetectionFilterError as exc:
        filters, error = None, str(exc)
    if filters is not None:
        rows, following = dt.timeline_page(state.db, state.index.use, filters, after, HITS_PAGE)
    context.update(rows=rows, next_cursor=following.encode() if following else None, cursor=cursor)
    return _page(request, scope, "detection_timeline.html", context, error)


@router.get("/cases/{case_id}/detections/rules/{rule_id}")
def rule_page(
    request: Request,
    scope: CaseRead,
    state: State,
    rule_id: PathId,
    host: Annotated[str, Query(max_length=255)] = "",
    cursor: Cursor = None,
) -> HTMLResponse:
    """One rule: what it is, its detection logic, and its hits in the case (paged)."""
    prepare(state, scope.case_id)
    details = rule_details(state.db, scope.case_id, rule_id)
    if details is None:
        context = {"case_id": scope.case_id, "details": None}
        response = render(request, "detection_rule.html", scope.principal, **context)
        response.status_code = 404
        return response
    filters = DetectionFilter(scope.case_id, host=host or None, rule_id=rule_id)
    error, rows, following = "", [], None
    try:
        after = dt.TimelineCursor.decode(cursor) if cursor else None
        rows, following = dt.timeline_page(state.db, state.index.use, filters, after, HITS_PAGE)
    except DetectionFilterError as exc:
        error = str(exc)
    context = {
        "case_id": scope.case_id,
        "details": details,
        "rule": details.hits.rule,
        "doc": details.doc,
        "host": host,
        "rows": rows,
        "cursor": cursor,
        "next_cursor": following.encode() if following else None,
        "technique_url": technique_url,
        "levels": [level.value for level in SigmaLevel],
    }
    return _page(request, scope, "detection_rule.html", context, error)
