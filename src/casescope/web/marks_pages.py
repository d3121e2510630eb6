"""Pages and form posts of marks and notes: star/hide from a result row, tag/untag and the
rest on the event page, bulk marks on a selection of rows or a whole search, notes on the
event page, and the case's tags with their counts.

Thin views over web/api/marks.py (the same checks, audit rows and errors); every form posts
with the session's CSRF token and comes back to the page it was sent from (`back`, a path
of this case only).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from casescope.model.users import EventMark
from casescope.services import bulk_marks as bm
from casescope.services.marks import MAX_LABEL, tag_counts
from casescope.services.notes import MAX_NOTE_CHARS, event_notes
from casescope.store.pills import conjoin
from casescope.store.query import Literal, Marked, render
from casescope.store.query_ast import MarkField
from casescope.store.where import EventKey
from casescope.web import search_view as sv
from casescope.web.api import marks as api
from casescope.web.api.saved_searches import SearchParams
from casescope.web.ids import PathId, PathSeq, parse_id
from casescope.web.pages import render as render_page
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State, local_path
from casescope.web.state import WebState

router = APIRouter(include_in_schema=False)

Label = Annotated[str, Form(max_length=MAX_LABEL)]
Back = Annotated[str, Form(max_length=4000)]
NoteText = Annotated[str, Form(max_length=MAX_NOTE_CHARS)]


class BulkOp(StrEnum):
    """The buttons of the search page's marks bar."""

    TAG = "tag"
    UNTAG = "untag"
    STAR = "star"
    UNSTAR = "unstar"
    HIDE = "hide"
    UNHIDE = "unhide"

    def change(self, label: str) -> bm.MarkChange:
        mark, add = _OPS[self]
        return bm.MarkChange(mark, label, add)


_OPS = {
    BulkOp.TAG: (EventMark.TAG, True),
    BulkOp.UNTAG: (EventMark.TAG, False),
    BulkOp.STAR: (EventMark.STAR, True),
    BulkOp.UNSTAR: (EventMark.STAR, False),
    BulkOp.HIDE: (EventMark.HIDDEN, True),
    BulkOp.UNHIDE: (EventMark.HIDDEN, False),
}


class Target(StrEnum):
    SELECTION = "selection"  # the rows ticked
    SEARCH = "search"  # every match of the search shown


def event_url(case_id: int, event: EventKey) -> str:
    return f"/cases/{case_id}/events/{event[0]}/{event[1]}"


def _back(scope: CaseScope, back: str, fallback: str) -> RedirectResponse:
    """To `back` when it is a page of this case, else to `fallback`."""
    target = local_path(back)
    if not target.startswith(f"/cases/{scope.case_id}/"):
        target = fallback
    return RedirectResponse(target, status_code=303)


def marks_context(state: WebState, case_id: int, event: EventKey) -> dict[str, object]:
    """What the event page's marks and notes section shows beside the event's marks."""
    return {
        "notes": event_notes(state.db, case_id, event),
        "note_max": MAX_NOTE_CHARS,
        "case_tags": tag_counts(state.db, case_id)[:200],
    }


def tag_query(label: str) -> str:
    """The query that finds the events with this tag (quoted as the label needs)."""
    return render(Marked(MarkField.TAG, Literal(label)))


@router.post("/cases/{case_id}/events/{file_id}/{seq}/marks")
def mark_page(
    scope: CaseWrite,
    state: State,
    file_id: PathId,
    seq: PathSeq,
    kind: Annotated[EventMark, Form()],
    label: Label = "",
    back: Back = "",
) -> Response:
    """Tag, star or hide one event (a result row's buttons, the event page's form)."""
    api.change_marks(state, scope, [(file_id, seq)], bm.MarkChange(kind, label))
    return _back(scope, back, event_url(scope.case_id, (file_id, seq)))


@router.post("/cases/{case_id}/events/{file_id}/{seq}/marks/remove")
def unmark_page(
    scope: CaseWrite,
    state: State,
    file_id: PathId,
    seq: PathSeq,
    kind: Annotated[EventMark, Form()],
    label: Label = "",
    back: Back = "",
) -> Response:
    """Untag, unstar or unhide one event."""
    change = bm.MarkChange(kind, label, add=False)
    api.change_marks(state, scope, [(file_id, seq)], change)
    return _back(scope, back, event_url(scope.case_id, (file_id, seq)))


def _event_keys(values: list[object]) -> list[EventKey]:
    """The ticked rows (`file_id:seq` each); anything else is a 400."""
    keys = []
    for value in values:
        file_text, _, seq_text = str(value).partition(":")
        file_id, seq = parse_id(file_text), parse_id(seq_text)
        if not file_id or seq is None:
            raise HTTPException(400, "a selected row is not an event (file_id:seq)")
        keys.append((file_id, seq))
    return keys


def _search_of(params: str) -> SearchParams:
    """The search shown, from its query string (as the save-search form sends it)."""
    try:
        values = {k: v if k == "filter" else v[-1] for k, v in parse_qs(params).items()}
        return SearchParams(**values)
    except ValidationError as exc:
        raise HTTPException(400, f"bad search parameters: {exc.errors()[0]['msg']}") from None


def _selection(values: list[object]) -> list[EventKey]:
    events = _event_keys(values[: api.MAX_SELECTION + 1])
    if not events:
        raise HTTPException(400, "select rows first (or choose every match of the search)")
    if len(events) > api.MAX_SELECTION:
        raise HTTPException(400, f"at most {api.MAX_SELECTION} rows at once")
    return events


def _apply_bulk(
    state: WebState, scope: CaseScope, change: bm.MarkChange, target: SearchParams | list
) -> None:
    """The change on the ticked rows, or on every match of the search (the index is read
    here: called in a worker thread)."""
    if isinstance(target, SearchParams):
        events = api.bulk_targets(state, scope, target)
        api.change_marks(state, scope, events, change, conjoin(target.q, target.filter))
    else:
        api.change_marks(state, scope, target, change)


@router.post("/cases/{case_id}/marks/bulk")
async def bulk_page(request: Request, scope: CaseWrite, state: State) -> Response:
    """The marks bar of the search page: one change to the ticked rows or to every match."""
    form = await request.form()
    try:
        op = BulkOp(str(form.get("op", "")))
        target = Target(str(form.get("target", Target.SELECTION)))
    except ValueError:
        raise HTTPException(400, "unknown mark action") from None
    change = op.change(str(form.get("label", ""))[: MAX_LABEL + 1])
    if target is Target.SEARCH:
        chosen: SearchParams | list = _search_of(str(form.get("params", ""))[:20_000])
    else:
        chosen = _selection(form.getlist("event"))
    await run_in_threadpool(_apply_bulk, state, scope, change, chosen)
    return _back(scope, str(form.get("back", "")), f"/cases/{scope.case_id}/search")


@router.post("/cases/{case_id}/events/{file_id}/{seq}/notes")
def add_note_page(
    scope: CaseWrite, state: State, file_id: PathId, seq: PathSeq, text: NoteText
) -> Response:
    api.write_note(state, scope, (file_id, seq), text)
    return RedirectResponse(event_url(scope.case_id, (file_id, seq)) + "#notes", 303)


@router.post("/cases/{case_id}/notes/{note_id}/edit")
def edit_note_page(scope: CaseWrite, state: State, note_id: PathId, text: NoteText) -> Response:
    note = api.change_note(state, scope, note_id, text)
    return RedirectResponse(event_url(scope.case_id, (note.file_id, note.seq)) + "#notes", 303)


@router.post("/cases/{case_id}/notes/{note_id}/delete")
def delete_note_page(scope: CaseWrite, state: State, note_id: PathId) -> Response:
    note = api.change_note(state, scope, note_id, None)
    return RedirectResponse(event_url(scope.case_id, (note.file_id, note.seq)) + "#notes", 303)


@router.get("/cases/{case_id}/tags")
def tags_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    """The case's tags, most used first, each a link to its events."""
    rows = [
        {"tag": t, "qs": sv.qs({"q": tag_query(t.label)})}
        for t in tag_counts(state.db, scope.case_id)
    ]
    return render_page(request, "tags.html", scope.principal, case_id=scope.case_id, tags=rows)
