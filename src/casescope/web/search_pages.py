"""Pages of the search side: search, event detail, saved searches, detections, IOCs.

Thin views over the same functions as the JSON API (web/api/search.py, saved_searches.py,
iocs.py); every form posts with the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from casescope.detect.levels import SigmaLevel
from casescope.errors import CasescopeError
from casescope.hunt.ioc import IocType
from casescope.model.users import EventMark
from casescope.services import event_search as es
from casescope.services import saved_searches as ss
from casescope.services.detections import DetectionFilter, summary
from casescope.services.ioc_hits import HitFilter, hit_summary
from casescope.services.marks import set_mark
from casescope.web.api import iocs as ioc_api
from casescope.web.api.params import Form as SearchFormDep
from casescope.web.api.saved_searches import SearchParams, owner_of, save
from casescope.web.api.search import (
    View,
    ViewDep,
    fetch_event,
    parse_columns,
    run_search,
    search_params,
)
from casescope.web.pages import render
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State, audit

router = APIRouter(include_in_schema=False)

#: Sortable result columns: header text and the sort key behind it.
SORT_HEADERS = (
    ("time", es.SortKey.TIME),
    ("EventID", es.SortKey.EVENT_ID),
    ("channel", es.SortKey.CHANNEL),
    ("computer", es.SortKey.COMPUTER),
)


def _qs(params: dict) -> str:
    return urlencode({k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()})


def _stored_links(rows: list[ss.StoredSearch]) -> list[dict]:
    return [
        {"id": s.id, "name": s.name, "q": s.params.get("q", ""), "qs": _qs(s.params)} for s in rows
    ]


def _remembered_view(request: Request, state: State, scope: CaseScope, view: View) -> View:
    """Without `columns` in the URL, the columns of the user's latest search in the case."""
    if "columns" in request.query_params:
        return view
    latest = ss.history(state.db, owner_of(scope), 1)
    if not latest:
        return view
    columns = parse_columns(str(latest[0].params.get("columns", "")))
    return View(view.order, view.sort, columns)


@router.get("/cases/{case_id}/search")
def search_page(
    request: Request,
    scope: CaseRead,
    state: State,
    form: SearchFormDep,
    view: ViewDep,
    cursor: str | None = None,
    exact_total: bool = False,
) -> HTMLResponse:
    """The search form and a page of results; the count reads "10,000+" past the count
    limit, with a link that counts every match (`exact_total=true`)."""
    view = _remembered_view(request, state, scope, view)
    result, error = None, ""
    if request.query_params:
        try:
            result = run_search(state, scope, form, cursor, (50, view), exact_total=exact_total)
        except HTTPException as exc:
            error = str(exc.detail)
    current = search_params(form, view)
    exact = {"exact_total": True} if exact_total else {}
    base = {k: v for k, v in current.items() if k not in ("sort", "order")}
    owner = owner_of(scope)
    return render(
        request,
        "search.html",
        scope.principal,
        case_id=scope.case_id,
        form=form,
        view=view,
        levels=[level.value for level in SigmaLevel],
        sorts=list(es.SortKey),
        sort_links=_sort_links(base, view),
        result=result,
        cursor=cursor,
        error=error,
        export_qs=_qs({k: v for k, v in current.items() if k not in ("sort", "order", "columns")}),
        page_qs=_qs({**current, **exact}),
        exact_qs=_qs({**current, "exact_total": True}),
        current_qs=_qs(current),
        history=_stored_links(ss.history(state.db, owner, 10)),
        saved=_stored_links(ss.list_saved(state.db, owner)),
    )


def _sort_links(base: dict, view: View) -> list[dict]:
    """Column headers: click to sort by it, again to flip the direction."""
    links = []
    for label, key in SORT_HEADERS:
        flip = view.sort is key and view.order.value == "asc"
        params = {**base, "sort": key.value, "order": "desc" if flip else "asc"}
        mark = (" ▲" if view.order.value == "asc" else " ▼") if view.sort is key else ""
        links.append({"label": label + mark, "qs": _qs(params)})
    return links


@router.post("/cases/{case_id}/saved-searches")
def save_search_page(
    scope: CaseRead,
    state: State,
    name: Annotated[str, Form(max_length=200)],
    params: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Save the search shown (its parameters arrive as the page's query string)."""
    try:
        parsed = SearchParams(**dict(parse_qsl(params)))
    except ValidationError as exc:
        raise HTTPException(400, f"bad search parameters: {exc.errors()[0]['msg']}") from None
    save(state, scope, name, parsed)
    return RedirectResponse(f"/cases/{scope.case_id}/search?{params}", status_code=303)


@router.post("/cases/{case_id}/saved-searches/{search_id}/delete")
def delete_search_page(scope: CaseRead, state: State, search_id: int) -> Response:
    try:
        ss.delete_saved(state.db, owner_of(scope), search_id)
    except LookupError:
        raise HTTPException(404, "no such saved search") from None
    return RedirectResponse(f"/cases/{scope.case_id}/search", status_code=303)


@router.get("/cases/{case_id}/events/{file_id}/{seq}")
def event_page(
    request: Request, scope: CaseRead, state: State, file_id: int, seq: int
) -> HTMLResponse:
    event = fetch_event(state, scope.case_id, file_id, seq)
    return render(request, "event.html", scope.principal, case_id=scope.case_id, event=event)


@router.post("/cases/{case_id}/events/{file_id}/{seq}/marks")
def mark_page(
    scope: CaseWrite,
    state: State,
    file_id: int,
    seq: int,
    kind: Annotated[EventMark, Form()],
    label: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        set_mark(state.db, scope.case_id, (file_id, seq), kind, label, scope.principal.name)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    audit(state, scope.principal, f"event.{kind.value}", scope.case_id, f"{file_id}:{seq}")
    return RedirectResponse(f"/cases/{scope.case_id}/events/{file_id}/{seq}", status_code=303)


@router.get("/cases/{case_id}/detections")
def detections_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    """Detections by rule and IOC hits by IOC, each count linking to its events."""
    detections = [
        {**item.__dict__, "qs": _qs({"rule": item.rule_uid})}
        for item in summary(state.db, DetectionFilter(scope.case_id))
    ]
    hits = [
        {**h.__dict__, "type": h.type.value, "qs": _qs({"ioc_id": h.ioc_id})}
        for h in hit_summary(state.db, HitFilter(scope.case_id))
    ]
    return render(
        request,
        "detections.html",
        scope.principal,
        case_id=scope.case_id,
        detections=detections,
        ioc_hits=hits,
    )


@router.get("/cases/{case_id}/iocs")
def iocs_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    rows = ioc_api.list_case_iocs(scope, state)
    for row in rows:
        row["qs"] = _qs({"ioc_id": row["id"]})
    return render(
        request,
        "iocs.html",
        scope.principal,
        case_id=scope.case_id,
        iocs=rows,
        types=list(IocType),
        message=request.query_params.get("message", "")[:500],
    )


def _back(case_id: int, result: dict) -> Response:
    errors = result.get("errors") or []
    if "removed" in result:
        parts = [f"{result['removed']} removed, {result['hits_deleted']} hits deleted"]
    else:
        parts = [f"{len(result['added'])} added", f"{len(result['changed'])} changed"]
        parts.append(f"{result['queued']} files queued for a re-hunt")
    if errors:
        parts.append(f"{len(errors)} bad lines (first: line {errors[0]['line']})")
    message = urlencode({"message": ", ".join(parts)})
    return RedirectResponse(f"/cases/{case_id}/iocs?{message}", status_code=303)


def _type(text: str) -> IocType | None:
    try:
        return IocType(text) if text else None
    except ValueError:
        raise HTTPException(400, "unknown IOC type") from None


@router.post("/cases/{case_id}/iocs/add")
def add_iocs_page(
    scope: CaseWrite,
    state: State,
    values: Annotated[str, Form(max_length=1_000_000)],
    type: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """One value per line (all or nothing: a bad value rejects the lot, with its reason)."""
    lines = [v.strip() for v in values.splitlines() if v.strip()]
    if not lines:
        raise HTTPException(400, "enter at least one value")
    body = ioc_api.NewIocs(values=lines, type=_type(type), note=note)
    return _back(scope.case_id, ioc_api.add(state, scope, body))


@router.post("/cases/{case_id}/iocs/import")
async def import_iocs_page(
    scope: CaseWrite,
    state: State,
    file: UploadFile,
    type: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    text = await ioc_api.read_upload(file)
    audit(state, scope.principal, "ioc.import", scope.case_id, file.filename or "")
    result = await run_in_threadpool(ioc_api.import_text, state, scope, text, _type(type))
    return _back(scope.case_id, result)


@router.post("/cases/{case_id}/iocs/action")
async def ioc_action_page(request: Request, scope: CaseWrite, state: State) -> Response:
    """Enable, disable or remove the selected IOCs."""
    form = await request.form()
    ids = [int(v) for v in form.getlist("ioc_ids") if str(v).isdigit()]
    if not ids:
        raise HTTPException(400, "select IOCs first")
    action = str(form.get("action", ""))
    if action in ("enable", "disable"):
        result = await run_in_threadpool(ioc_api.set_enabled, state, scope, ids, action == "enable")
    elif action == "remove":
        result = await run_in_threadpool(ioc_api.remove, state, scope, ids)
    else:
        raise HTTPException(400, "unknown action")
    return _back(scope.case_id, result)
