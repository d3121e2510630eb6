"""Marks in bulk, the case's tags, and notes on events (the single-event mark routes are in
web/api/search.py beside the event they change).

Every change is audited; a tag's label is in the audit row's detail. Notes are read by
anyone who can read the case, written by writers, and changed or deleted by their author or
an admin.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from casescope.errors import CasescopeError, IndexMemoryError, NotFoundError, QueryTimeoutError
from casescope.model.enums import AuditAction
from casescope.model.users import EventMark, Role
from casescope.services import bulk_marks as bm
from casescope.services import notes as ns
from casescope.services.marks import MAX_LABEL, tag_counts
from casescope.store.pills import conjoin
from casescope.store.where import EventKey
from casescope.web.api.models import IsoTime, OkOut
from casescope.web.api.saved_searches import SearchParams
from casescope.web.api.search import form_where
from casescope.web.ids import BodyId, PathId, PathSeq
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}", tags=["marks and notes"])

#: Events one request may name (a page of results is at most 500).
MAX_SELECTION = 1000


class BulkAction(StrEnum):
    ADD = "add"
    REMOVE = "remove"


class EventRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_id: BodyId
    seq: Annotated[int, Field(ge=0, le=2**40 - 1)]


class BulkMarks(BaseModel):
    """Put a mark on (or take it off) a selection of events, or every match of a search."""

    model_config = ConfigDict(extra="forbid")

    action: BulkAction
    kind: EventMark
    label: Annotated[str, Field(max_length=MAX_LABEL, description="The tag (tags only).")] = ""
    events: Annotated[list[EventRef], Field(max_length=MAX_SELECTION)] | None = None
    search: SearchParams | None = Field(
        default=None,
        description="Every match of this search (at most CASESCOPE_BULK_MARK_MAX_EVENTS).",
    )

    @model_validator(mode="after")
    def _one_target(self) -> BulkMarks:
        if (self.events is None) == (self.search is None):
            raise ValueError("give either `events` or `search`")
        return self


class BulkOut(BaseModel):
    events: int = Field(description="Events named or matched.")
    changed: int = Field(description="Events that got (or lost) the mark.")


class TagOut(BaseModel):
    label: str
    events: int = Field(description="Events with this tag.")
    last_at: IsoTime = Field(description="When it was last put on an event.")


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=ns.MAX_NOTE_CHARS)]


class NoteOut(BaseModel):
    id: int
    file_id: int
    seq: int
    author: str
    text: str
    created_at: IsoTime
    updated_at: IsoTime | None


def actor_of(scope: CaseScope) -> str:
    """The audit log's name for the caller (`web:NAME`, as `security.audit` writes it)."""
    return f"web:{scope.principal.name}"


class MarkBody(BaseModel):
    kind: EventMark
    label: Annotated[str, Field(max_length=MAX_LABEL)] = ""


@router.post("/events/{file_id}/{seq}/marks", response_model=OkOut)
def add_mark(
    body: MarkBody, scope: CaseWrite, state: State, file_id: PathId, seq: PathSeq
) -> OkOut:
    """Tag, star or hide one event (again: no change)."""
    change_marks(state, scope, [(file_id, seq)], bm.MarkChange(body.kind, body.label))
    return OkOut()


@router.delete("/events/{file_id}/{seq}/marks", response_model=OkOut)
def remove_mark(
    body: MarkBody, scope: CaseWrite, state: State, file_id: PathId, seq: PathSeq
) -> OkOut:
    """Untag, unstar or unhide one event (a tag by its label)."""
    change = bm.MarkChange(body.kind, body.label, add=False)
    change_marks(state, scope, [(file_id, seq)], change)
    return OkOut()


def bulk_targets(state: WebState, scope: CaseScope, search: SearchParams) -> list[EventKey]:
    """Every match of a search in the case (refused past CASESCOPE_BULK_MARK_MAX_EVENTS)."""
    where = form_where(state, scope, search.form())
    try:
        with state.index.use() as index:
            return bm.search_events(index, where, state.settings.bulk_mark_max_events)
    except (IndexMemoryError, QueryTimeoutError):
        raise  # 503 (web/app.py)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None


def change_marks(
    state: WebState,
    scope: CaseScope,
    events: list[EventKey],
    change: bm.MarkChange,
    search: str | None = None,
) -> bm.BulkResult:
    """Apply and audit a mark change (a 400 for a tag without a label); `search`, the query
    whose matches these are, goes into the audit row."""
    try:
        result = bm.apply_change(state.db, scope.case_id, events, change, scope.principal.name)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    extra: dict[str, object] = {"changed": result.changed}
    if search is not None:
        extra["query"] = search[:500]
    bm.audit_change(state.db, actor_of(scope), scope.case_id, change, events, extra)
    return result


@router.post("/marks/bulk", response_model=BulkOut)
def bulk_marks(body: BulkMarks, scope: CaseWrite, state: State) -> BulkOut:
    """Tag/untag, star/unstar or hide/unhide a selection (`events`) or a whole search."""
    change = bm.MarkChange(body.kind, body.label, body.action is BulkAction.ADD)
    query = None
    if body.search is not None:
        events = bulk_targets(state, scope, body.search)
        query = conjoin(body.search.q, body.search.filter)
    else:
        events = [(e.file_id, e.seq) for e in body.events or []]
    result = change_marks(state, scope, events, change, query)
    return BulkOut(events=result.events, changed=result.changed)


@router.get("/tags", response_model=list[TagOut])
def tags(scope: CaseRead, state: State) -> list[TagOut]:
    """The case's tags with their number of events, most used first."""
    return [
        TagOut.model_validate(t, from_attributes=True) for t in tag_counts(state.db, scope.case_id)
    ]


def editor_of(scope: CaseScope) -> ns.Editor:
    return ns.Editor(scope.principal.name, scope.principal.role is Role.ADMIN)


def _note_out(note: ns.NoteInfo) -> NoteOut:
    return NoteOut.model_validate(note, from_attributes=True)


@router.get("/events/{file_id}/{seq}/notes", response_model=list[NoteOut])
def list_notes(scope: CaseRead, state: State, file_id: PathId, seq: PathSeq) -> list[NoteOut]:
    """The notes of one event, oldest first."""
    return [_note_out(n) for n in ns.event_notes(state.db, scope.case_id, (file_id, seq))]


def write_note(state: WebState, scope: CaseScope, event: EventKey, text: str) -> ns.NoteInfo:
    try:
        note = ns.add_note(state.db, scope.case_id, event, scope.principal.name, text)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    ns.audit_note(state.db, actor_of(scope), AuditAction.NOTE_ADD, scope.case_id, note)
    return note


def change_note(state: WebState, scope: CaseScope, note_id: int, text: str | None) -> ns.NoteInfo:
    """Edit (`text`) or delete (None) a note: 404 not in the case, 403 not its author."""
    try:
        if text is None:
            note = ns.delete_note(state.db, scope.case_id, note_id, editor_of(scope))
        else:
            note = ns.edit_note(state.db, scope.case_id, note_id, editor_of(scope), text)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ns.NoteNotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    action = AuditAction.NOTE_DELETE if text is None else AuditAction.NOTE_EDIT
    ns.audit_note(state.db, actor_of(scope), action, scope.case_id, note)
    return note


@router.post("/events/{file_id}/{seq}/notes", response_model=NoteOut)
def add_note(
    body: NoteBody, scope: CaseWrite, state: State, file_id: PathId, seq: PathSeq
) -> NoteOut:
    """Write a note on an event (you are its author)."""
    return _note_out(write_note(state, scope, (file_id, seq), body.text))


@router.put("/notes/{note_id}", response_model=NoteOut)
def edit_note(body: NoteBody, scope: CaseWrite, state: State, note_id: PathId) -> NoteOut:
    """Replace a note's text: its author or an admin."""
    return _note_out(change_note(state, scope, note_id, body.text))


@router.delete("/notes/{note_id}", response_model=OkOut)
def delete_note(scope: CaseWrite, state: State, note_id: PathId) -> OkOut:
    """Delete a note: its author or an admin."""
    change_note(state, scope, note_id, None)
    return OkOut()
