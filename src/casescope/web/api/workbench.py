"""The event workbench API: an event's findings, context and neighbours; process trees and
activity; logon sessions. The pages (web/event_pages.py) render these same answers.

Every route checks case access like the other case routes (`CaseRead`); an event of another
case is a 404, a bad parameter a 400/422 with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from casescope.errors import CasescopeError, IndexMemoryError
from casescope.services import event_search as es
from casescope.services.event_detail import (
    CONTEXT_MINUTES,
    MAX_CONTEXT_MINUTES,
    Badge,
    ContextCursors,
    context,
    detection_badges,
    ioc_matches,
    neighbours,
    rule_hits,
)
from casescope.services.logon_sessions import find_session, normalise_logon_id, session_filter
from casescope.services.process_graph import TreeLimits
from casescope.services.processes import activity_filter, lifetime, process_tree
from casescope.services.search import query_limits
from casescope.store.where import Where
from casescope.web.api.params import SearchForm, parse_time, search_form
from casescope.web.api.search import Order, View, fetch_event, parse_columns
from casescope.web.api.workbench_models import (
    ContextOut,
    EventKey,
    EventRef,
    EventRow,
    FindingsOut,
    LogonSessionOut,
    NeighboursOut,
    ProcessActivityOut,
    ProcessOut,
    ProcessTreeOut,
    event_row,
    ioc_out,
    process_out,
    rule_out,
    session_fields,
    time_text,
    tree_out,
    tree_refs,
)
from casescope.web.ids import PathId, PathSeq
from casescope.web.security import CaseRead, CaseScope, State
from casescope.web.state import WebState

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

router = APIRouter(prefix="/api/cases/{case_id}", tags=["workbench"])

Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of a page.")]
PageSize = Annotated[int, Query(ge=1, le=500)]


def _refs(rows: list[dict[str, Any]]) -> list[EventKey]:
    return [(int(r["file_id"]), int(r["seq"])) for r in rows]


def rows_out(state: WebState, case_id: int, rows: list[dict[str, Any]]) -> list[EventRow]:
    badges = detection_badges(state.db, case_id, _refs(rows))
    return [event_row(r, badges) for r in rows]


def _page(index: EventIndex, where: Where, cursor: str | None, limit: int) -> es.Page:
    try:
        decoded = es.Cursor.decode(cursor) if cursor else None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    return es.search_page(index, where, es.PageSpec(decoded, limit))


def _bad_request(exc: CasescopeError) -> HTTPException:
    return HTTPException(400, str(exc))


# ---------------------------------------------------------------- the event


@router.get("/events/{file_id}/{seq}/findings", response_model=FindingsOut)
def findings(scope: CaseRead, state: State, file_id: PathId, seq: PathSeq) -> FindingsOut:
    """The Sigma rules that matched the event (with their logic) and the IOCs that hit it."""
    fetch_event(state, scope.case_id, file_id, seq)
    return load_findings(state, scope.case_id, (file_id, seq))


def load_findings(state: WebState, case_id: int, ref: EventKey) -> FindingsOut:
    return FindingsOut(
        rules=[rule_out(h) for h in rule_hits(state.db, case_id, ref)],
        ioc_hits=[ioc_out(h) for h in ioc_matches(state.db, case_id, ref)],
    )


def load_context(
    state: WebState, scope: CaseScope, event: dict[str, Any], minutes: int, page: ContextCursors
) -> ContextOut:
    try:
        with state.index.use() as index:
            found = context(index, scope.case_id, event, minutes, page)
    except IndexMemoryError:
        raise
    except CasescopeError as exc:
        raise _bad_request(exc) from None
    return ContextOut(
        event=EventRef(file_id=int(event["file_id"]), seq=int(event["seq"])),
        minutes=found.minutes,
        total=found.total,
        total_exact=found.total_exact,
        rows=rows_out(state, scope.case_id, found.rows),
        earlier=found.earlier,
        later=found.later,
    )


Minutes = Annotated[
    int, Query(ge=1, le=MAX_CONTEXT_MINUTES, description="Minutes either side of the event.")
]


@router.get("/events/{file_id}/{seq}/context", response_model=ContextOut)
def event_context(
    scope: CaseRead,
    state: State,
    file_id: PathId,
    seq: PathSeq,
    minutes: Minutes = CONTEXT_MINUTES,
    before: Cursor = None,
    after: Cursor = None,
) -> ContextOut:
    """Events on the same computer within ± `minutes`: 25 either side of the event, or a
    page of 50 before the `before` cursor or after the `after` one (`earlier`, `later`)."""
    if before and after:
        raise HTTPException(400, "give `before` or `after`, not both")
    event = fetch_event(state, scope.case_id, file_id, seq)
    return load_context(state, scope, event, minutes, ContextCursors(before, after))


def load_neighbours(
    state: WebState, scope: CaseScope, event: dict[str, Any], search: tuple[SearchForm, View]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    form, view = search
    where = es.build_filtered_where(
        state.db, form.request(scope.case_id, query_limits(state.settings)), form.filters()
    )
    with state.index.use() as index:
        return neighbours(index, where, event, es.Ordering(view.sort, view.order is Order.DESC))


#: Search parameters an event page or neighbours request carries (the search's URL).
_BOOLS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}  # as FastAPI reads them
_TEXTS = ("q", "start", "end", "level", "channel", "computer", "file_id", "rule", "ioc_id")
_FLAGS = ("has_detection", "has_ioc_hit", "show_hidden", "starred")


def search_of_request(request: Request) -> tuple[SearchForm, View]:
    """The search an event was opened from, from the query string. Read by hand: these
    routes' `file_id` path parameter would shadow the search's `file_id` filter."""
    got = request.query_params
    if any(len(v) > 10_000 for v in got.values()):
        raise HTTPException(400, "a search parameter is over 10,000 characters")
    flags = {}
    for name in _FLAGS:
        if name in got:
            if got[name].lower() not in _BOOLS:
                raise HTTPException(400, f"{name} must be true or false")
            flags[name] = _BOOLS[got[name].lower()]
    texts = {k: got[k] for k in _TEXTS if k in got}
    form = search_form(**texts, **flags, filter=got.getlist("filter"))
    try:
        order = Order(got.get("order", Order.ASC.value))
        sort = es.SortKey(got.get("sort", es.SortKey.TIME.value))
    except ValueError:
        raise HTTPException(400, "unknown sort or order") from None
    return form, View(order, sort, parse_columns(got.get("columns", "")))


SearchOf = Annotated[tuple[SearchForm, View], Depends(search_of_request)]


@router.get("/events/{file_id}/{seq}/neighbours", response_model=NeighboursOut)
def event_neighbours(
    scope: CaseRead, state: State, file_id: PathId, seq: PathSeq, search: SearchOf
) -> NeighboursOut:
    """The previous and next events of a search around this event, by keyset (one `LIMIT 1`
    query each way). Pass the search's parameters (`q`, `start`, `end`, the filters,
    `sort`, `order`) as on `GET /events`."""
    event = fetch_event(state, scope.case_id, file_id, seq)
    before, after = load_neighbours(state, scope, event, search)

    def ref(row: dict[str, Any] | None) -> EventRef | None:
        return EventRef(file_id=int(row["file_id"]), seq=int(row["seq"])) if row else None

    return NeighboursOut(previous=ref(before), next=ref(after))


# ---------------------------------------------------------------- processes


def tree_limits(
    depth: Annotated[int, Query(ge=1, le=20, description="Levels of descendants.")] = 4,
    nodes: Annotated[int, Query(ge=10, le=2000, description="Processes shown at most.")] = 300,
    ancestors: Annotated[int, Query(ge=1, le=100, description="Ancestors shown at most.")] = 32,
) -> TreeLimits:
    return TreeLimits(ancestors=ancestors, depth=depth, nodes=nodes)


Limits = Annotated[TreeLimits, Depends(tree_limits)]


def load_tree(
    state: WebState, scope: CaseScope, event: dict[str, Any], limits: TreeLimits
) -> ProcessTreeOut:
    try:
        with state.index.use() as index:
            tree = process_tree(index, scope.case_id, event, limits)
    except IndexMemoryError:
        raise
    except CasescopeError as exc:
        raise _bad_request(exc) from None
    badges = detection_badges(state.db, scope.case_id, tree_refs(tree.root))
    return tree_out(tree, badges, limits)


@router.get("/events/{file_id}/{seq}/process-tree", response_model=ProcessTreeOut)
def event_process_tree(
    scope: CaseRead, state: State, file_id: PathId, seq: PathSeq, limits: Limits
) -> ProcessTreeOut:
    """The process of the event (it created, or it names) with its ancestors and
    descendants (Sysmon 1 by ProcessGuid, Security 4688 by process id within lifetimes).
    400 for an event that names no process."""
    event = fetch_event(state, scope.case_id, file_id, seq)
    return load_tree(state, scope, event, limits)


def load_activity(
    state: WebState, scope: CaseScope, event: dict[str, Any], page: tuple[str | None, int]
) -> ProcessActivityOut:
    cursor, limit = page
    try:
        with state.index.use() as index:
            life = lifetime(index, scope.case_id, event)
            found = _page(index, activity_filter(scope.case_id, life), cursor, limit)
    except IndexMemoryError:
        raise
    except CasescopeError as exc:
        raise _bad_request(exc) from None
    badges: dict[EventKey, Badge] = {}
    if life.process.ref:
        badges = detection_badges(state.db, scope.case_id, [life.process.ref])
    return ProcessActivityOut(
        process=ProcessOut(**process_out(life.process, badges)),
        since=time_text(life.window.since),
        until=time_text(life.window.until),
        total=found.total,
        total_exact=found.total_exact,
        rows=rows_out(state, scope.case_id, found.rows),
        next_cursor=found.next_cursor,
    )


@router.get("/events/{file_id}/{seq}/process-activity", response_model=ProcessActivityOut)
def event_process_activity(
    scope: CaseRead,
    state: State,
    file_id: PathId,
    seq: PathSeq,
    cursor: Cursor = None,
    limit: PageSize = 50,
) -> ProcessActivityOut:
    """What the event's process did in its lifetime (network, image loads, files, registry,
    DNS, process access, …), in time order, paged by keyset."""
    event = fetch_event(state, scope.case_id, file_id, seq)
    return load_activity(state, scope, event, (cursor, limit))


# ---------------------------------------------------------------- logon sessions


@dataclass(frozen=True)
class SessionQuery:
    computer: str
    logon_id: str
    at: datetime | None


def session_query(
    computer: Annotated[str, Query(min_length=1, max_length=500)],
    logon_id: Annotated[str, Query(min_length=1, max_length=40, description="e.g. 0x3c004")],
    at: Annotated[
        str, Query(max_length=50, description="A time in the session (ISO 8601; else the first).")
    ] = "",
) -> SessionQuery:
    try:
        normalised = normalise_logon_id(logon_id)
    except CasescopeError as exc:
        raise _bad_request(exc) from None
    moment = parse_time(at, "at")
    naive = moment.replace(tzinfo=None) if moment else None
    return SessionQuery(computer, normalised, naive)


SessionDep = Annotated[SessionQuery, Depends(session_query)]


def load_session(
    state: WebState, scope: CaseScope, query: SessionQuery, page: tuple[str | None, int]
) -> LogonSessionOut:
    cursor, limit = page
    with state.index.use() as index:
        session = find_session(index, scope.case_id, (query.computer, query.logon_id), query.at)
        found = _page(index, session_filter(scope.case_id, session), cursor, limit)
    return LogonSessionOut(
        **session_fields(session),
        total=found.total,
        total_exact=found.total_exact,
        rows=rows_out(state, scope.case_id, found.rows),
        next_cursor=found.next_cursor,
    )


@router.get("/logon-sessions", response_model=LogonSessionOut)
def logon_session(
    scope: CaseRead, state: State, query: SessionDep, cursor: Cursor = None, limit: PageSize = 50
) -> LogonSessionOut:
    """The logon session `logon_id` on `computer` open at `at`: start (4624), end (4634 or
    4647), user, logon type, source, elevation, and every event in it, paged by keyset."""
    return load_session(state, scope, query, (cursor, limit))
