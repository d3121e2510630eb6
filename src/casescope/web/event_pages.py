"""Pages of the event workbench: the event (fields with pivots, findings, context, previous
and next in its search), the process tree with the process's activity, the logon session.

Each page renders the same answer as its API route (web/api/workbench.py). Every value is
autoescaped; a value reaches a link only URL-encoded in the query string of a search of the
case (pivots) or of a logon session page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from casescope.errors import CasescopeError
from casescope.services.event_detail import CONTEXT_MINUTES, ContextCursors, pretty_json
from casescope.services.logon_sessions import normalise_logon_id
from casescope.services.pivots import TEXT_COLUMNS, any_of, pivot, query_field
from casescope.services.process_records import actor_record, creation_record
from casescope.store.process_events import LOGON_FIELDS
from casescope.store.summary import summarise
from casescope.web.api import workbench as wb
from casescope.web.api.params import SearchForm
from casescope.web.api.search import View, fetch_event, search_params
from casescope.web.ids import PathId, PathSeq
from casescope.web.marks_pages import marks_context
from casescope.web.pages import render
from casescope.web.security import CaseRead, CaseScope, State

router = APIRouter(include_in_schema=False)

#: The event's columns in its field table, before its fields.
CORE_COLUMNS = (
    "event_id",
    "channel",
    "provider",
    "computer",
    "record_id",
    "level",
    "user_name",
    "user_sid",
)


#: The session an event is about comes first: the one it opened (Target), then its own.
SESSION_ORDER = ("TargetLogonId", "LogonId", "SubjectLogonId")


def qs(params: dict[str, Any]) -> str:
    """A query string; booleans as `true`/`false`, as the search form sends them."""
    values = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    return urlencode(values, doseq=True)  # `filter` (the pills) is a list


def _search_url(case_id: int, params: dict[str, Any] | None) -> str | None:
    return f"/cases/{case_id}/search?{qs(params)}" if params is not None else None


def session_url(case_id: int, event: dict[str, Any], value: str) -> str | None:
    """The logon session page of a logon id value of `event` (None: not a session id)."""
    try:
        logon_id = normalise_logon_id(value)
    except CasescopeError:
        return None
    at = str(event.get("ts", "")).replace(" ", "T") + "Z"
    params = {"computer": event.get("computer", ""), "logon_id": logon_id, "at": at}
    return f"/cases/{case_id}/logon-session?{qs(params)}"


def field_rows(case_id: int, event: dict[str, Any], search: dict[str, Any]) -> list[dict]:
    """The field table: core columns then event fields, each with its pivot links."""
    named = [(c, event.get(c), True) for c in CORE_COLUMNS]
    named += [(k, v, False) for k, v in (event.get("fields") or {}).items()]
    rows = []
    for name, value, column in named:
        if value is None or (column and value == ""):
            continue
        text = str(value)
        links = pivot(
            search,
            query_field(name, column=column),
            text,
            everywhere=not column or name in TEXT_COLUMNS,
        )
        rows.append(
            {
                "name": name,
                "value": text,
                "column": column,
                "for": _search_url(case_id, links.filter_for),
                "out": _search_url(case_id, links.filter_out),
                "everywhere": _search_url(case_id, links.everywhere),
                "session": session_url(case_id, event, text) if name in LOGON_FIELDS else None,
                "session_rank": SESSION_ORDER.index(name) if name in SESSION_ORDER else 99,
            }
        )
    return rows


def _neighbour_urls(
    state: Any, scope: CaseScope, event: dict[str, Any], search: tuple[SearchForm, View], tail: str
) -> tuple[str | None, str | None, str]:
    """Links to the previous and next events of the search (with its parameters), or the
    reason there are none."""
    try:
        before, after = wb.load_neighbours(state, scope, event, search)
    except HTTPException as exc:
        return None, None, f"previous/next unavailable: {exc.detail}"

    def url(row: dict[str, Any] | None) -> str | None:
        if row is None:
            return None
        return f"/cases/{scope.case_id}/events/{row['file_id']}/{row['seq']}{tail}"

    return url(before), url(after), ""


def _context_params(
    ctx_minutes: int, ctx_before: str | None, ctx_after: str | None
) -> tuple[int, ContextCursors]:
    if ctx_before and ctx_after:
        raise HTTPException(400, "give ctx_before or ctx_after, not both")
    return ctx_minutes, ContextCursors(ctx_before, ctx_after)


@router.get("/cases/{case_id}/events/{file_id}/{seq}")
def event_page(
    request: Request,
    scope: CaseRead,
    state: State,
    file_id: PathId,
    seq: PathSeq,
    search_of: wb.SearchOf,
    ctx_minutes: wb.Minutes = CONTEXT_MINUTES,
    ctx_before: wb.Cursor = None,
    ctx_after: wb.Cursor = None,
) -> HTMLResponse:
    """The event: fields with pivots, rules and IOC hits, context on its computer, previous
    and next in the search it was opened from (its parameters ride along in the URL)."""
    event = fetch_event(state, scope.case_id, file_id, seq)
    search = search_params(*search_of)
    tail = f"?{qs(search)}" if search else ""
    previous, following, neighbour_error = _neighbour_urls(state, scope, event, search_of, tail)
    minutes, page = _context_params(ctx_minutes, ctx_before, ctx_after)
    around = wb.load_context(state, scope, event, minutes, page)
    found = wb.load_findings(state, scope.case_id, (file_id, seq))
    fields = event.get("fields") or {}
    return render(
        request,
        "event.html",
        scope.principal,
        case_id=scope.case_id,
        event=event,
        summary=summarise(event["channel"], event["provider"], event["event_id"], fields),
        fields=field_rows(scope.case_id, event, search),
        findings=found,
        raw=pretty_json(event.get("raw") or ""),
        is_process=creation_record(event) is not None or actor_record(event) is not None,
        context=around,
        self_qs=qs({**search, "ctx_minutes": minutes}),
        search_fields={k: str(v).lower() if isinstance(v, bool) else v for k, v in search.items()},
        search_qs=qs(search),
        search_tail=tail,
        previous=previous,
        following=following,
        neighbour_error=neighbour_error,
        back=_search_url(scope.case_id, search) if search else None,
        **marks_context(state, scope.case_id, (file_id, seq)),
    )


@router.get("/cases/{case_id}/events/{file_id}/{seq}/process-tree")
def process_tree_page(
    request: Request,
    scope: CaseRead,
    state: State,
    file_id: PathId,
    seq: PathSeq,
    limits: wb.Limits,
    cursor: wb.Cursor = None,
) -> HTMLResponse:
    """The process tree around the event's process, and that process's activity (paged)."""
    event = fetch_event(state, scope.case_id, file_id, seq)
    try:
        tree = wb.load_tree(state, scope, event, limits)
        activity = wb.load_activity(state, scope, event, (cursor, 50))
    except HTTPException as exc:  # not a process event, a bad cursor: said in the layout
        page = render(
            request, "base.html", scope.principal, case_id=scope.case_id, error=str(exc.detail)
        )
        page.status_code = exc.status_code
        return page
    limits_qs = qs({"depth": limits.depth, "nodes": limits.nodes, "ancestors": limits.ancestors})
    return render(
        request,
        "process_tree.html",
        scope.principal,
        case_id=scope.case_id,
        event=event,
        tree=tree,
        activity=activity,
        limits_qs=limits_qs,
        children_search=lambda node: _children_search(scope.case_id, node),
    )


def _children_search(case_id: int, node: Any) -> str | None:
    """A search of a process's children (for the ones a tree does not show)."""
    if node.guid:
        query = any_of("ParentProcessGuid", [node.guid, f"{{{node.guid}}}"])
    elif node.pid is not None:
        query = f"EventID:4688 AND {any_of('ProcessId', [f'0x{node.pid:x}'])}"
    else:
        return None
    return _search_url(case_id, {"q": query, "computer": node.computer})


@router.get("/cases/{case_id}/logon-session")
def logon_session_page(
    request: Request,
    scope: CaseRead,
    state: State,
    query: wb.SessionDep,
    cursor: wb.Cursor = None,
) -> HTMLResponse:
    """A logon session: start, end, source, user, type, and every event in it (paged)."""
    session = wb.load_session(state, scope, query, (cursor, 50))
    base = {"computer": query.computer, "logon_id": query.logon_id}
    if query.at:
        base["at"] = query.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return render(
        request,
        "logon_session.html",
        scope.principal,
        case_id=scope.case_id,
        session=session,
        page_qs=qs(base),
        computer_search=_search_url(scope.case_id, {"computer": query.computer}),
    )
