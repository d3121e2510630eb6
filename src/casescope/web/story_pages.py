"""Pages of the case story: the story page (read by all who can open the case, changed by its
writers) and the forms that add to it from search rows and the event page.

Thin views over web/api/story.py's functions; every form posts with the session's CSRF token
and answers with a redirect (back to the page it came from, when that is a page of this app).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casescope.model.users import EventMark
from casescope.services import story as st
from casescope.services.report import ReportFormat
from casescope.web.api import story as api
from casescope.web.ids import MAX_ID, MAX_SEQ, PathId
from casescope.web.pages import render
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State, local_path

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(min_length=1, max_length=st.MAX_TEXT)]
FormPosition = Annotated[int | None, Form(ge=0, le=st.MAX_ITEMS)]


class Direction(StrEnum):
    """Where a move button sends an item."""

    UP = "up"
    DOWN = "down"
    TOP = "top"
    BOTTOM = "bottom"


def _story_url(scope: CaseScope, anchor: str = "") -> str:
    return f"/cases/{scope.case_id}/story{anchor}"


def _back(scope: CaseScope, back: str) -> RedirectResponse:
    """To `back` when it is a path of this app, else to the story."""
    target = local_path(back) if back else _story_url(scope)
    return RedirectResponse(target if target != "/" else _story_url(scope), status_code=303)


@router.get("/cases/{case_id}/story")
def story_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    """The story: events and text in order; export links; editing for writers."""
    story = api.story_out(state, scope)
    return render(
        request,
        "story.html",
        scope.principal,
        case_id=scope.case_id,
        story=story,
        formats=list(ReportFormat),
        max_text=st.MAX_TEXT,
        marks=(EventMark.STAR, EventMark.TAG),
        directions=list(Direction),
    )


@router.post("/cases/{case_id}/story/events")
def add_event_form(
    scope: CaseWrite,
    state: State,
    file_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    seq: Annotated[int, Form(ge=0, le=MAX_SEQ)],
    back: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """The "add to story" button of a search row or the event page."""
    added = api.add_keys(state, scope, [(file_id, seq)], None)
    if added.missing:
        raise HTTPException(404, "no such event in this case")
    return _back(scope, back)


@router.post("/cases/{case_id}/story/marked")
def add_marked_form(
    scope: CaseWrite,
    state: State,
    mark: Annotated[EventMark, Form()],
    label: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Add every starred event, or every event with a tag."""
    api.add_marked(state, scope, api.AddMarked(mark=mark, label=label))
    return RedirectResponse(_story_url(scope), status_code=303)


@router.post("/cases/{case_id}/story/texts")
def add_text_form(
    scope: CaseWrite, state: State, text: FormText, position: FormPosition = None
) -> Response:
    entry = api.add_text(state, scope, text, position)
    return RedirectResponse(_story_url(scope, f"#item-{entry.id}"), status_code=303)


@router.post("/cases/{case_id}/story/items/{item_id}/edit")
def edit_text_form(scope: CaseWrite, state: State, item_id: PathId, text: FormText) -> Response:
    api.change_item(state, scope, item_id, api.ItemChange(text=text))
    return RedirectResponse(_story_url(scope, f"#item-{item_id}"), status_code=303)


@router.post("/cases/{case_id}/story/items/{item_id}/move")
def move_form(
    scope: CaseWrite,
    state: State,
    item_id: PathId,
    direction: Annotated[Direction, Form()],
) -> Response:
    """Move an item one place up or down, or to the top or the bottom."""
    positions = {e.id: e.position for e in st.story(state.db, scope.case_id)}
    if item_id not in positions:
        raise HTTPException(404, "no such story item")
    now = positions[item_id]
    to = {
        Direction.UP: max(0, now - 1),
        Direction.DOWN: now + 1,
        Direction.TOP: 0,
        Direction.BOTTOM: len(positions) - 1,
    }[direction]
    api.change_item(state, scope, item_id, api.ItemChange(position=to))
    return RedirectResponse(_story_url(scope, f"#item-{item_id}"), status_code=303)


@router.post("/cases/{case_id}/story/items/{item_id}/delete")
def delete_form(scope: CaseWrite, state: State, item_id: PathId) -> Response:
    api.remove_item(state, scope, item_id)
    return RedirectResponse(_story_url(scope), status_code=303)
