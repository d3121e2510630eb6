"""Notes (comments) of analysts on events: who wrote what, when, and when it was edited.

A note names its event by (file id, seq) in a case, like a mark. Its author or an admin may
edit or delete it; anyone who can read the case reads it. `note:TEXT` and `has:note` find
events by their notes (`services/mark_search.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import func, select

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord, utcnow
from casescope.model.users import EventNote
from casescope.services.case_lifecycle import ensure_open
from casescope.services.marks import like_of
from casescope.store.query_ast import Literal, Pattern
from casescope.store.where import EventKey

logger = logging.getLogger(__name__)

#: The longest note, in characters (a few pages of text).
MAX_NOTE_CHARS = 10_000


class NoteNotAllowed(CasescopeError):
    """Only a note's author or an admin may change or delete it."""


@dataclass(frozen=True)
class NoteInfo:
    id: int
    file_id: int
    seq: int
    author: str
    text: str
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class Editor:
    """Who asks to change a note: their name and whether they are an admin."""

    name: str
    is_admin: bool = False


def _info(row: EventNote) -> NoteInfo:
    return NoteInfo(
        row.id, row.file_id, row.seq, row.author, row.text, row.created_at, row.updated_at
    )


def note_text(text: str) -> str:
    """A note's text as kept: trimmed, not empty, at most `MAX_NOTE_CHARS`, no NUL."""
    text = text.strip()
    if not text:
        raise CasescopeError("a note needs some text")
    if len(text) > MAX_NOTE_CHARS:
        raise CasescopeError(f"a note has at most {MAX_NOTE_CHARS:,} characters")
    if "\x00" in text:
        raise CasescopeError("a note cannot contain a NUL character")
    return text


def add_note(db: Database, case_id: int, event: EventKey, author: str, text: str) -> NoteInfo:
    ensure_open(db, case_id)
    text = note_text(text)
    with db.session() as session:
        row = EventNote(case_id=case_id, file_id=event[0], seq=event[1], author=author, text=text)
        session.add(row)
        session.flush()
        return _info(row)


def _editable(session, case_id: int, note_id: int, editor: Editor) -> EventNote:  # type: ignore[no-untyped-def]
    row = session.get(EventNote, note_id)
    if row is None or row.case_id != case_id:
        raise NotFoundError(f"no note {note_id} in this case")
    if row.author != editor.name and not editor.is_admin:
        raise NoteNotAllowed("only its author or an admin may change a note")
    return row


def edit_note(db: Database, case_id: int, note_id: int, editor: Editor, text: str) -> NoteInfo:
    """Replace a note's text (its author or an admin); NotFoundError, NoteNotAllowed."""
    ensure_open(db, case_id)
    text = note_text(text)
    with db.session() as session:
        row = _editable(session, case_id, note_id, editor)
        row.text = text
        row.updated_at = utcnow()
        session.flush()
        return _info(row)


def delete_note(db: Database, case_id: int, note_id: int, editor: Editor) -> NoteInfo:
    """Delete a note (its author or an admin); what it was."""
    ensure_open(db, case_id)
    with db.session() as session:
        row = _editable(session, case_id, note_id, editor)
        info = _info(row)
        session.delete(row)
        return info


def get_note(db: Database, case_id: int, note_id: int) -> NoteInfo:
    with db.read() as session:
        row = session.get(EventNote, note_id)
        if row is None or row.case_id != case_id:
            raise NotFoundError(f"no note {note_id} in this case")
        return _info(row)


def event_notes(db: Database, case_id: int, event: EventKey) -> list[NoteInfo]:
    """The notes of one event, oldest first."""
    query = (
        select(EventNote)
        .where(
            EventNote.case_id == case_id, EventNote.file_id == event[0], EventNote.seq == event[1]
        )
        .order_by(EventNote.id)
    )
    with db.read() as session:
        return [_info(row) for row in session.scalars(query)]


def note_counts(db: Database, case_id: int, events: Sequence[EventKey]) -> dict[EventKey, int]:
    """How many notes each of `events` has (a page of results; events without any left out)."""
    if not events:
        return {}
    wanted = set(events)
    query = (
        select(EventNote.file_id, EventNote.seq, func.count(EventNote.id))
        .where(
            EventNote.case_id == case_id,
            EventNote.file_id.in_(sorted({f for f, _ in events})),
        )
        .group_by(EventNote.file_id, EventNote.seq)
    )
    with db.read() as session:
        rows = session.execute(query)
        return {(f, s): n for f, s, n in rows if (f, s) in wanted}


def noted_events(
    db: Database, case_id: int, value: Literal | Pattern | None
) -> tuple[EventKey, ...]:
    """Events with a note containing `value` (any case; wildcards as in the query language),
    or with any note when `value` is None."""
    query = select(EventNote.file_id, EventNote.seq).where(EventNote.case_id == case_id)
    if value is not None:
        pattern = like_of(value, anchored=False)
        query = query.where(func.lower(EventNote.text).like(pattern, escape="\\"))
    with db.read() as session:
        return tuple((f, s) for f, s in session.execute(query.distinct()))


def audit_note(db: Database, actor: str, action: AuditAction, case_id: int, note: NoteInfo) -> None:
    """The audit row of a note written, edited or deleted: its id, event and author."""
    detail = {"note": note.id, "event": f"{note.file_id}:{note.seq}", "author": note.author}
    row = AuditRecord(
        actor=actor[:100], action=action, case_id=case_id, detail=orjson.dumps(detail).decode()
    )
    with db.session() as session:
        session.add(row)
