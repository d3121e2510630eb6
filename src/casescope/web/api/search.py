"""Events: paged search, one event, streamed export, IOC hits (marks and notes:
web/api/marks.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import orjson
import pyarrow as pa
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from casescope.errors import CasescopeError, IndexMemoryError, QueryTimeoutError
from casescope.model.enums import AuditAction
from casescope.services import event_search as es
from casescope.services.ioc_hits import HitFilter, hit_summary
from casescope.services.marks import marks_of
from casescope.services.notes import note_counts
from casescope.services.saved_searches import Owner, record_history
from casescope.services.search import ExportFormat, export_header, export_lines, query_limits
from casescope.store.event_lookup import get_event
from casescope.store.where import Where
from casescope.web.api.params import Form, SearchForm
from casescope.web.api.search_models import EventOut, EventsPage, FacetValue, IocHitsOut
from casescope.web.ids import PathId, PathSeq
from casescope.web.security import CaseRead, CaseScope, State, audit
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}", tags=["search"])


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


class Direction(StrEnum):
    """Which page of a keyset walk: the one after the cursor, or the one before it."""

    NEXT = "next"
    PREV = "prev"


MAX_COLUMNS = 10


@dataclass(frozen=True)
class View:
    """How results are shown: direction, sort column, extra field columns."""

    order: Order = Order.ASC
    sort: es.SortKey = es.SortKey.TIME
    columns: tuple[str, ...] = ()

    def as_params(self) -> dict[str, str]:
        return {
            "order": self.order.value,
            "sort": self.sort.value,
            "columns": ",".join(self.columns),
        }


def parse_columns(text: str) -> tuple[str, ...]:
    """Comma-separated field names, at most `MAX_COLUMNS`, duplicates dropped."""
    names = [c.strip()[:100] for c in text.split(",") if c.strip()]
    return tuple(dict.fromkeys(names))[:MAX_COLUMNS]


def view_params(
    order: Order = Order.ASC,
    sort: es.SortKey = es.SortKey.TIME,
    columns: Annotated[str, Query(max_length=2000, description="Extra field columns.")] = "",
) -> View:
    return View(order, sort, parse_columns(columns))


ViewDep = Annotated[View, Depends(view_params)]


def search_params(form: SearchForm, view: View) -> dict:
    """The form and view as one JSON-able dict (history, saved searches), defaults left out."""
    both = {**form.as_params(), **view.as_params()}
    defaults = {**SearchForm().as_params(), **View().as_params()}
    return {k: v for k, v in both.items() if v != defaults[k]}


def form_where(state: WebState, scope: CaseScope, form: SearchForm) -> Where:
    """The WHERE of the form's search in the case (its query within the configured limits)."""
    request = form.request(scope.case_id, query_limits(state.settings))
    return es.build_filtered_where(state.db, request, form.filters())


def run_search(
    state: WebState,
    scope: CaseScope,
    form: SearchForm,
    cursor: str | None,
    page: tuple[int, View],
    *,
    exact_total: bool = False,
    raw: bool = False,
    direction: Direction = Direction.NEXT,
) -> dict:
    """One page of results with each event's marks; a first page goes into the history.

    The matches are counted up to `CASESCOPE_SEARCH_COUNT_LIMIT` (`total_exact` false: there
    are more than `total`) unless `exact_total` asks for all of them.
    """
    limit, view = page
    where = form_where(state, scope, form)
    cap = state.settings.search_count_limit
    try:
        decoded = es.Cursor.decode(cursor) if cursor else None
        backward = direction is Direction.PREV
        spec = es.PageSpec(decoded, limit, view.sort, view.order is Order.DESC, raw, backward)
        with state.index.use() as index:
            result = es.search_page(
                index, where, spec, count_limit=None if exact_total or not cap else cap
            )
    except (IndexMemoryError, QueryTimeoutError):
        raise  # 503 (web/app.py), not a bad request
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    if cursor is None and direction is Direction.NEXT:
        owner = Owner(scope.principal.user.id, scope.case_id)
        record_history(state.db, owner, search_params(form, view))
    keys = [(int(r["file_id"]), int(r["seq"])) for r in result.rows]
    marks = marks_of(state.db, scope.case_id, keys)
    notes = note_counts(state.db, scope.case_id, keys)
    for row, key in zip(result.rows, keys, strict=True):
        row["marks"] = marks.get(key, [])
        row["notes"] = notes.get(key, 0)
    return {
        "total": result.total,
        "total_exact": result.total_exact,
        "rows": result.rows,
        "next_cursor": result.next_cursor,
        "prev_cursor": result.prev_cursor,
    }


@router.get("/events", response_model=EventsPage)
def events(
    scope: CaseRead,
    state: State,
    form: Form,
    view: ViewDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=es.MAX_PAGE)] = 50,
    exact_total: Annotated[
        bool, Query(description="Count every match (default: up to the count limit).")
    ] = False,
    raw: Annotated[
        bool, Query(description="Include each event's original record (`raw`) in its row.")
    ] = False,
    direction: Annotated[
        Direction,
        Query(description="`prev`: the page before `cursor` (without a cursor: the last page)."),
    ] = Direction.NEXT,
) -> EventsPage:
    """Matching events, one keyset page at a time (pass `next_cursor` back as `cursor`;
    `prev_cursor` with `direction=prev` for the page before).

    `total` is exact when `total_exact` is true; otherwise there are more than `total`
    matches (the count limit) and `exact_total=true` counts them all. Rows carry every
    column and field but the original record, unless `raw=true` (or fetch one event:
    `GET /events/{file_id}/{seq}`).
    """
    page = run_search(
        state,
        scope,
        form,
        cursor,
        (limit, view),
        exact_total=exact_total,
        raw=raw,
        direction=direction,
    )
    return EventsPage.model_validate(page)


@router.get("/facets", response_model=list[FacetValue])
def facets(
    scope: CaseRead,
    state: State,
    form: Form,
    field: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=es.MAX_PAGE)] = 20,
    exact: Annotated[
        bool, Query(description="Count an event field over all matches, not a sample.")
    ] = False,
) -> list[FacetValue]:
    """Top values of a column (computer, channel, ...) or event field among the matches.

    Each row is `{value, events}`, counted over all matches. An event field with more
    matches than `CASESCOPE_FACET_SAMPLE_EVENTS` is counted over that many of them only:
    then every row also has `sample`, that number (`exact=true` counts all matches).
    """
    where = form_where(state, scope, form)
    size = state.settings.facet_sample_events
    with state.index.use() as index:
        facet = es.top_values(index, where, field, limit, None if exact or not size else size)
    return [FacetValue(**row, sample=facet.sample) for row in facet.values]


def fetch_event(state: WebState, case_id: int, file_id: int, seq: int) -> dict:
    with state.index.use() as index:
        row = get_event(index, case_id, file_id, seq)
    if row is None:
        raise HTTPException(404, "no such event")
    row["marks"] = marks_of(state.db, case_id, [(file_id, seq)]).get((file_id, seq), [])
    row["notes"] = note_counts(state.db, case_id, [(file_id, seq)]).get((file_id, seq), 0)
    return row


@router.get("/events/{file_id}/{seq}", response_model=EventOut)
def event(scope: CaseRead, state: State, file_id: PathId, seq: PathSeq) -> EventOut:
    return EventOut.model_validate(fetch_event(state, scope.case_id, file_id, seq))


def _export_chunks(
    batches: Iterator[pa.RecordBatch], fmt: ExportFormat
) -> Iterator[bytes | memoryview]:
    """The export's header, then each batch's lines (one chunk of the response each)."""
    if header := export_header(fmt):
        yield header
    for batch in batches:
        yield export_lines(batch)


def export_response(
    state: WebState, scope: CaseScope, form: SearchForm, fmt: ExportFormat
) -> StreamingResponse:
    where = form_where(state, scope, form)
    audit(
        state,
        scope.principal,
        AuditAction.EVENT_EXPORT,
        scope.case_id,
        orjson.dumps({"format": fmt.value, **form.as_params()}).decode(),
    )
    chunks = es.export_chunks(state.index.use, where, fmt)
    # the first chunk's query runs now, so that a query stopped at its bound (time, memory)
    # answers with its status and message, not a response cut after its headers
    first = next(chunks, None)
    body = _export_chunks(itertools.chain([] if first is None else [first], chunks), fmt)
    media = "text/csv; charset=utf-8" if fmt is ExportFormat.CSV else "application/x-ndjson"
    name = f"case{scope.case_id}-events.{fmt.value}"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


#: The export's media types, by `format` (the route streams; FastAPI cannot infer them).
EXPORT_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "JSON lines"}},
}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"description": "The events, CSV or JSON lines.", "content": EXPORT_CONTENT}},
)
def export(
    scope: CaseRead, state: State, form: Form, format: ExportFormat = ExportFormat.CSV
) -> StreamingResponse:
    """Every matching event, streamed (no cap); audited."""
    return export_response(state, scope, form, format)


@router.get("/ioc-hits", response_model=list[IocHitsOut])
def ioc_hits(scope: CaseRead, state: State) -> list[IocHitsOut]:
    """IOC hits grouped by IOC."""
    summary = hit_summary(state.db, HitFilter(scope.case_id))
    return [IocHitsOut.model_validate(s, from_attributes=True) for s in summary]
