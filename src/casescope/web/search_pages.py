"""Pages of the search side: search, event detail, saved searches, IOCs.

Thin views over the same functions as the JSON API (web/api/search.py, saved_searches.py,
iocs.py); every form posts with the session's CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from casescope.detect.levels import SigmaLevel
from casescope.errors import IndexMemoryError, QueryTimeoutError
from casescope.hunt.ioc import IocType
from casescope.model.enums import AuditAction
from casescope.services import event_search as es
from casescope.services import saved_searches as ss
from casescope.services.annotations import badges_of
from casescope.services.first_steps import first_steps
from casescope.store.pills import MAX_CLAUSE, MAX_PILLS, Pivot, Source, clause
from casescope.web import search_view as sv
from casescope.web.api import iocs as ioc_api
from casescope.web.api.params import Form as SearchFormDep
from casescope.web.api.params import SearchForm
from casescope.web.api.saved_searches import (
    SavedSearchChange,
    SearchParams,
    change,
    owner_of,
    remove,
    save,
)
from casescope.web.api.search import (
    Direction,
    Order,
    View,
    ViewDep,
    run_search,
    search_params,
)
from casescope.web.highlight import highlight_terms
from casescope.web.ids import PathId, parse_ids
from casescope.web.pages import render
from casescope.web.security import Caller, CaseRead, CaseScope, CaseWrite, State, audit

router = APIRouter(include_in_schema=False)

#: Sortable result columns: header text and the sort key behind it.
SORT_HEADERS = (
    ("time", es.SortKey.TIME),
    ("EventID", es.SortKey.EVENT_ID),
    ("channel", es.SortKey.CHANNEL),
    ("computer", es.SortKey.COMPUTER),
)
#: Rows of a search page.
PAGE_ROWS = 50
#: Names of the core columns offered by the query box's completion (docs/query-language.md).
CORE_NAMES = ("EventID", "Channel", "Provider", "Computer", "user", "sid", "Level", "ts")


def _qs(params: dict) -> str:
    return sv.qs(params)


def _stored_links(rows: list[ss.StoredSearch]) -> list[dict]:
    return [
        {
            "id": s.id,
            "name": s.name,
            "q": s.params.get("q", ""),
            "qs": _qs(s.params),
            "shared": s.shared,
            "owner": s.owner,
            "editable": s.editable,
        }
        for s in rows
    ]


@dataclass(frozen=True)
class PageAt:
    """Where in the result the page is: the keyset cursor and direction, the position of its
    first row (a label only), and its number of rows."""

    cursor: str | None = None
    direction: Direction = Direction.NEXT
    at: int | None = None
    size: int = PAGE_ROWS


def page_at(
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    direction: Direction = Direction.NEXT,
    at: Annotated[int | None, Query(ge=0)] = None,
    size: Annotated[int, Query(ge=1, le=es.MAX_PAGE)] = PAGE_ROWS,
) -> PageAt:
    return PageAt(cursor, direction, at, size)


@router.get("/cases/{case_id}/search")
def search_page(
    request: Request,
    scope: CaseRead,
    state: State,
    form: SearchFormDep,
    view: ViewDep,
    position: Annotated[PageAt, Depends(page_at)],
    exact_total: bool = False,
) -> HTMLResponse:
    """The search form and a page of results: the timeline, the field sidebar, pills, rows
    with their summary, detections and IOC hits, and keyset paging both ways; the count reads
    "10,000+" past the count limit, with a link that counts every match. Without any
    parameter: first steps in the case."""
    result, error, steps = None, "", None
    # `q` always (empty too): a link without any parameter is the first-steps page
    current = {"q": form.q, **search_params(form, view)}
    if exact_total:
        current["exact_total"] = True
    if request.query_params:
        try:
            result = _results(state, scope, form, view, position, exact_total)
        except HTTPException as exc:
            error = str(exc.detail)
        except (IndexMemoryError, QueryTimeoutError) as exc:  # shown in the page, not as JSON
            error = str(exc)
    else:
        with state.index.use() as index:
            steps = first_steps(state.db, index, scope.case_id)
    return render(
        request,
        "search.html",
        scope.principal,
        **_context(state, scope, form, view, current),
        result=result,
        paging=sv.paging(current, result, position.at, PAGE_ROWS) if result else None,
        cursor=position.cursor,
        error=error,
        steps=steps,
        steps_links=sv.first_step_links(steps) if steps else [],
        terms=highlight_terms(form.q) if result else (),
    )


def _results(
    state: State, scope: CaseScope, form: SearchForm, view: View, where: PageAt, exact: bool
) -> dict:
    """A page of results with each row decorated (`search_view.decorate`)."""
    page = (where.size, view)
    result = run_search(
        state, scope, form, where.cursor, page, exact_total=exact, direction=where.direction
    )
    keys = [(int(r["file_id"]), int(r["seq"])) for r in result["rows"]]
    sv.decorate(result["rows"], badges_of(state.db, scope.case_id, keys), view.columns)
    return result


def _context(state: State, scope: CaseScope, form: SearchForm, view: View, current: dict) -> dict:
    """What every search page shows whatever its result: the form, links, the lists."""
    base = sv.without(current, "sort", "order")
    search_only = sv.without(current, "sort", "order", "columns", "exact_total")
    owner = owner_of(scope)
    return {
        "case_id": scope.case_id,
        "form": form,
        "view": view,
        "levels": [level.value for level in SigmaLevel],
        "sorts": list(es.SortKey),
        "sort_links": _sort_links(base, view),
        "pills": sv.pills(current),
        "columns": sv.column_headers(current, view.columns),
        "export_qs": _qs(search_only),
        "exact_qs": _qs({**current, "exact_total": True}),
        "current_qs": _qs(sv.without(current, "exact_total")),
        "search_qs": _qs(search_only),
        "nav_qs": _qs(sv.without(current, "start", "end")),
        "core_names": CORE_NAMES,
        "history": _stored_links(ss.history(state.db, owner, 10)),
        "saved": _stored_links(ss.list_saved(state.db, owner)),
    }


def _sort_links(base: dict, view: View) -> list[dict]:
    """Column headers: click to sort by it, again to flip the direction."""
    links = []
    for label, key in SORT_HEADERS:
        ascending = view.order is Order.ASC
        flip = view.sort is key and ascending
        params = {**base, "sort": key.value, "order": (Order.DESC if flip else Order.ASC).value}
        mark = (" ▲" if ascending else " ▼") if view.sort is key else ""
        links.append({"label": label + mark, "qs": _qs(params)})
    return links


@router.get("/cases/{case_id}/search/pivot")
def pivot_page(
    scope: CaseRead,
    form: SearchFormDep,
    view: ViewDep,
    field: Annotated[str, Query(min_length=1, max_length=200)],
    value: Annotated[str, Query(max_length=MAX_CLAUSE)],
    mode: Pivot,
    source: Source = Source.FIELD,
) -> Response:
    """Filter the search for or against a value (a pill more), or search the whole case for
    it; then show that search. The clause is written here, by the query language's own
    renderer, so any value reads back as exactly itself."""
    text = clause(field, value, mode, source)
    if text is None:
        raise HTTPException(400, f"no {mode.value} filter can be written for this value")
    if mode is Pivot.EVERYWHERE:
        target = {"q": text}
    else:
        current = search_params(form, view)
        kept = [p for p in current.get("filter", []) if p != text]
        if len(kept) >= MAX_PILLS:
            raise HTTPException(400, f"at most {MAX_PILLS} filters")
        target = {**current, "filter": [*kept, text]}
    return RedirectResponse(f"/cases/{scope.case_id}/search?{_qs(target)}", status_code=303)


@router.get("/help/query-language")
def query_help_page(request: Request, principal: Caller) -> HTMLResponse:
    """The query language in short, with examples (docs/query-language.md in full)."""
    return render(request, "help_query.html", principal)


@router.post("/cases/{case_id}/saved-searches")
def save_search_page(
    scope: CaseRead,
    state: State,
    name: Annotated[str, Form(max_length=200)],
    params: Annotated[str, Form(max_length=20_000)] = "",
    shared: Annotated[bool, Form()] = False,
) -> Response:
    """Save the search shown (its parameters arrive as the page's query string)."""
    try:
        values = {k: v if k == "filter" else v[-1] for k, v in parse_qs(params).items()}
        parsed = SearchParams(**values)
    except ValidationError as exc:
        raise HTTPException(400, f"bad search parameters: {exc.errors()[0]['msg']}") from None
    save(state, scope, name, parsed, shared)
    return RedirectResponse(f"/cases/{scope.case_id}/search?{params}", status_code=303)


@router.post("/cases/{case_id}/saved-searches/{search_id}/delete")
def delete_search_page(scope: CaseRead, state: State, search_id: PathId) -> Response:
    remove(state, scope, search_id)
    return RedirectResponse(f"/cases/{scope.case_id}/search", status_code=303)


@router.post("/cases/{case_id}/saved-searches/{search_id}/share")
def share_search_page(
    scope: CaseRead, state: State, search_id: PathId, shared: Annotated[bool, Form()]
) -> Response:
    """Share a saved search with the case, or stop sharing it."""
    change(state, scope, search_id, SavedSearchChange(shared=shared))
    return RedirectResponse(f"/cases/{scope.case_id}/search", status_code=303)


@router.get("/cases/{case_id}/iocs")
def iocs_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    rows = ioc_api.ioc_rows(state, scope.case_id)
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
    audit(state, scope.principal, AuditAction.IOC_IMPORT, scope.case_id, file.filename or "")
    result = await run_in_threadpool(ioc_api.import_text, state, scope, text, _type(type))
    return _back(scope.case_id, result)


class IocAction(StrEnum):
    """The buttons of the IOC page's selection form (iocs.html)."""

    ENABLE = "enable"
    DISABLE = "disable"
    REMOVE = "remove"


@router.post("/cases/{case_id}/iocs/action")
async def ioc_action_page(request: Request, scope: CaseWrite, state: State) -> Response:
    """Enable, disable or remove the selected IOCs."""
    form = await request.form()
    ids = parse_ids(form.getlist("ioc_ids"))
    if not ids:
        raise HTTPException(400, "select IOCs first")
    try:
        action = IocAction(str(form.get("action", "")))
    except ValueError:
        raise HTTPException(400, "unknown action") from None
    if action is IocAction.REMOVE:
        result = await run_in_threadpool(ioc_api.remove, state, scope, ids)
    else:
        enable = action is IocAction.ENABLE
        result = await run_in_threadpool(ioc_api.set_enabled, state, scope, ids, enable)
    return _back(scope.case_id, result)
