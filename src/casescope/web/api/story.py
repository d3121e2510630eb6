"""The case story and its report: read by everyone who can open the case, changed by those
who may change it (analysts with access, admins), every change audited.

The report is the story with each event read from the index now, as Markdown, self-contained
HTML or CSV (services/report_render.py); downloading it is audited like an export.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from casescope.errors import CasescopeError
from casescope.model.enums import AuditAction
from casescope.model.story import StoryItemKind
from casescope.model.users import EventMark
from casescope.services import story as st
from casescope.services.report import Report, ReportFormat, build_report
from casescope.services.report_render import render_report, report_filename
from casescope.web.api.models import IsoTime, OkOut
from casescope.web.ids import BodyId, BodySeq, PathId
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State, audit
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}", tags=["story and report"])

Position = Annotated[int | None, Field(ge=0, le=st.MAX_ITEMS, description="0-based; none: end")]
StoryText = Annotated[str, Field(min_length=1, max_length=st.MAX_TEXT)]


class EventRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_id: BodyId
    seq: BodySeq


class AddEvents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventRef], Field(min_length=1, max_length=st.MAX_ITEMS)]
    position: Position = None


class AddMarked(BaseModel):
    """Add every event of the case with this mark: a star, or a tag (`label`: that tag)."""

    model_config = ConfigDict(extra="forbid")

    mark: EventMark
    label: Annotated[str, Field(max_length=100)] = ""
    position: Position = None


class NewText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StoryText
    position: Position = None


class ItemChange(BaseModel):
    """A text block's new text, and/or where the item goes."""

    model_config = ConfigDict(extra="forbid")

    text: StoryText | None = None
    position: Position = None


class NewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[BodyId], Field(max_length=st.MAX_ITEMS)]


class StoryEventOut(BaseModel):
    """What the story shows of an event; `found` false when the index no longer has it."""

    file_id: int
    seq: int
    ts: IsoTime | None
    found: bool
    event_id: int | None
    channel: str
    provider: str
    computer: str
    user_name: str
    summary: str
    file_name: str
    detections: list[str] = Field(description='"level: rule title" of each Sigma detection.')
    tags: list[str]
    starred: bool


class StoryItemOut(BaseModel):
    id: int
    position: int
    kind: StoryItemKind
    text: str = Field(description="A text block's text (empty for an event).")
    event: StoryEventOut | None = None
    by: str = Field(description="Who added it, or last edited its text.")


class StoryOut(BaseModel):
    case_id: int
    items: list[StoryItemOut]


class AddedOut(BaseModel):
    added: list[int] = Field(description="Ids of the items made.")
    present: int = Field(description="Asked for but already in the story.")
    missing: int = Field(description="Asked for but not in the case's index.")


def story_out(state: WebState, scope: CaseScope) -> StoryOut:
    """The story with its events read from the index (one lookup for all of them)."""
    with state.index.use() as index:
        report = build_report(state.db, index, scope.case_id, scope.principal.name)
    return StoryOut(case_id=scope.case_id, items=_items(report))


def _items(report: Report) -> list[StoryItemOut]:
    out = []
    for item in report.items:
        event = None
        if item.event is not None:
            event = StoryEventOut.model_validate(item.event, from_attributes=True)
        out.append(
            StoryItemOut(
                id=item.id,
                position=item.position,
                kind=item.kind,
                text=item.text,
                event=event,
                by=item.by,
            )
        )
    return out


def _audit(state: WebState, scope: CaseScope, action: AuditAction, detail: str) -> None:
    audit(state, scope.principal, action, scope.case_id, detail)


def add_keys(
    state: WebState, scope: CaseScope, keys: list[tuple[int, int]], position: int | None
) -> st.Added:
    """Add events by key (those in the index), audited with their keys."""
    possible = [(f, s) for f, s in keys if f < 1 << 24 and s < 1 << 40]  # see store/where.py
    try:
        with state.index.use() as index:
            added = st.add_found(
                state.db, index, scope.case_id, possible, scope.principal.name, position
            )
    except st.StoryFull as exc:
        raise HTTPException(409, str(exc)) from None
    added = st.Added(added.entries, added.present, added.missing + len(keys) - len(possible))
    if added.entries:
        shown = ", ".join(f"{e.file_id}:{e.seq}" for e in added.entries[:50])
        more = f" (+{len(added.entries) - 50} more)" if len(added.entries) > 50 else ""
        _audit(state, scope, AuditAction.STORY_ADD, f"events {shown}{more}")
    return added


def _added_out(added: st.Added) -> AddedOut:
    return AddedOut(
        added=[e.id for e in added.entries], present=added.present, missing=added.missing
    )


def add_marked(state: WebState, scope: CaseScope, body: AddMarked) -> st.Added:
    if body.mark is EventMark.HIDDEN:
        raise HTTPException(400, "add starred or tagged events (hidden ones are hidden)")
    keys = st.marked_keys(state.db, scope.case_id, body.mark, body.label)
    return add_keys(state, scope, keys, body.position)


def add_text(state: WebState, scope: CaseScope, text: str, position: int | None) -> st.Entry:
    try:
        entry = st.add_text(state.db, scope.case_id, text, scope.principal.name, position)
    except st.StoryFull as exc:
        raise HTTPException(409, str(exc)) from None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    _audit(state, scope, AuditAction.STORY_ADD, f"text {entry.id}: {entry.text[:200]}")
    return entry


def change_item(state: WebState, scope: CaseScope, item_id: int, body: ItemChange) -> None:
    """Edit a text block's text and/or move an item, audited."""
    try:
        if body.text is not None:
            entry = st.edit_text(state.db, scope.case_id, item_id, body.text, scope.principal.name)
            _audit(state, scope, AuditAction.STORY_EDIT, f"text {item_id}: {entry.text[:200]}")
        if body.position is not None:
            st.move(state.db, scope.case_id, item_id, body.position)
            _audit(state, scope, AuditAction.STORY_MOVE, f"item {item_id} to {body.position}")
    except LookupError:
        raise HTTPException(404, "no such story item") from None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None


def remove_item(state: WebState, scope: CaseScope, item_id: int) -> None:
    try:
        gone = st.remove(state.db, scope.case_id, item_id)
    except LookupError:
        raise HTTPException(404, "no such story item") from None
    what = f"event {gone.file_id}:{gone.seq}" if gone.key else f"text {gone.id}: {gone.text[:200]}"
    _audit(state, scope, AuditAction.STORY_REMOVE, what)


@router.get("/story", response_model=StoryOut)
def get_story(scope: CaseRead, state: State) -> StoryOut:
    """The case story in order, each event with what the report shows of it."""
    return story_out(state, scope)


@router.post("/story/events", status_code=201, response_model=AddedOut)
def add_story_events(body: AddEvents, scope: CaseWrite, state: State) -> AddedOut:
    """Add events (oldest first, at `position` or the end); none found is a 404."""
    keys = [(e.file_id, e.seq) for e in body.events]
    added = add_keys(state, scope, keys, body.position)
    if added.missing == len(set(keys)):
        raise HTTPException(404, "no such event in this case")
    return _added_out(added)


@router.post("/story/marked", status_code=201, response_model=AddedOut)
def add_story_marked(body: AddMarked, scope: CaseWrite, state: State) -> AddedOut:
    """Add every starred event, or every event with a tag (`label`), oldest first."""
    return _added_out(add_marked(state, scope, body))


@router.post("/story/texts", status_code=201, response_model=StoryItemOut)
def add_story_text(body: NewText, scope: CaseWrite, state: State) -> StoryItemOut:
    """Add a text block (at `position`, or at the end)."""
    entry = add_text(state, scope, body.text, body.position)
    return StoryItemOut(
        id=entry.id, position=entry.position, kind=entry.kind, text=entry.text, by=entry.created_by
    )


@router.patch("/story/items/{item_id}", response_model=OkOut)
def change_story_item(body: ItemChange, scope: CaseWrite, state: State, item_id: PathId) -> OkOut:
    """Edit a text block's text, and/or move an item to `position`."""
    change_item(state, scope, item_id, body)
    return OkOut()


@router.delete("/story/items/{item_id}", response_model=OkOut)
def delete_story_item(scope: CaseWrite, state: State, item_id: PathId) -> OkOut:
    """Take an item out of the story (the event itself is untouched)."""
    remove_item(state, scope, item_id)
    return OkOut()


@router.put("/story/order", response_model=StoryOut)
def reorder_story(body: NewOrder, scope: CaseWrite, state: State) -> StoryOut:
    """Put the story in the order of `ids`, which must name every item once (else 400)."""
    try:
        st.reorder(state.db, scope.case_id, body.ids)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    _audit(state, scope, AuditAction.STORY_MOVE, f"order {body.ids[:100]}")
    return story_out(state, scope)


REPORT_CONTENT = {
    "text/markdown": {"schema": {"type": "string"}},
    "text/html": {"schema": {"type": "string", "description": "one self-contained page"}},
    "text/csv": {"schema": {"type": "string"}},
}


def report_response(state: WebState, scope: CaseScope, fmt: ReportFormat) -> Response:
    """The report as a download, audited."""
    with state.index.use() as index:
        report = build_report(state.db, index, scope.case_id, scope.principal.name)
    body = render_report(report, fmt)
    _audit(state, scope, AuditAction.REPORT_EXPORT, f"{fmt.value}, {len(report.items)} items")
    name = report_filename(report, fmt)
    return Response(
        body,
        media_type=fmt.media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/report",
    response_class=Response,
    responses={200: {"description": "The report.", "content": REPORT_CONTENT}},
)
def report(scope: CaseRead, state: State, format: ReportFormat = ReportFormat.HTML) -> Response:
    """The story as a report (`md`, `html`, `csv`): a download; audited."""
    return report_response(state, scope, format)
