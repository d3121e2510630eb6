"""The case story: the events that matter, in the order the analyst tells them, with text.

One story per case (`story_items`). Any user who may change the case adds events (one by
one, or all its starred events or those with a tag), writes text blocks, edits them, moves
items and removes them; everyone who can open the case reads it and exports it as a report
(`services/report.py`). An event is in a story at most once; its time is kept with it, so a
report can read all its events from the index by time range.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.story import StoryItem, StoryItemKind
from casescope.model.tables import utcnow
from casescope.model.users import EventMark, EventMarkRecord
from casescope.services.case_lifecycle import ensure_open
from casescope.store.event_lookup import event_times

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: Characters of one text block (a few pages of prose).
MAX_TEXT = 20_000
#: Items of one story: a report people read, not an export of a search.
MAX_ITEMS = 1_000

EventKey = tuple[int, int]  # (file id, seq)


class StoryFull(CasescopeError):
    """The story already holds `MAX_ITEMS` items."""


@dataclass(frozen=True)
class Entry:
    """One item of a story as callers see it."""

    id: int
    position: int
    kind: StoryItemKind
    file_id: int | None
    seq: int | None
    ts: datetime | None
    text: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime | None

    @property
    def key(self) -> EventKey | None:
        if self.file_id is None or self.seq is None:
            return None
        return (self.file_id, self.seq)


def _entry(row: StoryItem) -> Entry:
    return Entry(
        row.id,
        row.position,
        row.kind,
        row.file_id,
        row.seq,
        row.ts,
        row.text,
        row.created_by,
        row.created_at,
        row.updated_by,
        row.updated_at,
    )


def _rows(session: Session, case_id: int) -> list[StoryItem]:
    return list(
        session.scalars(
            select(StoryItem)
            .where(StoryItem.case_id == case_id)
            .order_by(StoryItem.position, StoryItem.id)
        )
    )


def story(db: Database, case_id: int) -> list[Entry]:
    """The case's story in order."""
    with db.read() as session:
        return [_entry(row) for row in _rows(session, case_id)]


def _check_text(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise CasescopeError("a text block needs some text")
    if len(text) > MAX_TEXT:
        raise CasescopeError(f"a text block holds at most {MAX_TEXT:,} characters")
    return text


def _place(rows: list[StoryItem], new: list[StoryItem], position: int | None) -> None:
    """Insert `new` at `position` (None or past the end: at the end) and renumber all."""
    if len(rows) + len(new) > MAX_ITEMS:
        raise StoryFull(f"a story holds at most {MAX_ITEMS:,} items")
    at = len(rows) if position is None else max(0, min(position, len(rows)))
    for number, row in enumerate([*rows[:at], *new, *rows[at:]]):
        row.position = number


def add_text(
    db: Database, case_id: int, text: str, actor: str, position: int | None = None
) -> Entry:
    """A text block, at `position` (0-based; None: at the end)."""
    ensure_open(db, case_id)
    row = StoryItem(
        case_id=case_id, kind=StoryItemKind.TEXT, text=_check_text(text), created_by=actor
    )
    with db.session() as session:
        _place(_rows(session, case_id), [row], position)
        session.add(row)
        session.flush()
        return _entry(row)


def add_events(
    db: Database,
    case_id: int,
    events: Sequence[tuple[int, int, datetime]],
    actor: str,
    position: int | None = None,
) -> list[Entry]:
    """Add events given as (file id, seq, time), those not in the story yet, in the order
    given, at `position` (None: at the end); the entries added."""
    ensure_open(db, case_id)
    with db.session() as session:
        rows = _rows(session, case_id)
        present = {(r.file_id, r.seq) for r in rows if r.kind is StoryItemKind.EVENT}
        new, seen = [], set(present)
        for file_id, seq, ts in events:
            if (file_id, seq) not in seen:
                seen.add((file_id, seq))
                new.append(
                    StoryItem(
                        case_id=case_id,
                        kind=StoryItemKind.EVENT,
                        file_id=file_id,
                        seq=seq,
                        ts=ts,
                        created_by=actor,
                    )
                )
        _place(rows, new, position)
        session.add_all(new)
        session.flush()
        return [_entry(row) for row in new]


@dataclass(frozen=True)
class Added:
    """What adding events did: the entries made, and how many asked for were left out as
    already in the story or not in the index (an unknown event, or a file not loaded)."""

    entries: list[Entry]
    present: int
    missing: int


def add_found(
    db: Database,
    index: EventIndex,
    case_id: int,
    keys: Sequence[EventKey],
    actor: str,
    position: int | None = None,
) -> Added:
    """Add the events of `keys` that the index holds, oldest first, at `position`."""
    wanted = list(dict.fromkeys(keys))
    times = event_times(index, case_id, wanted)
    found = sorted(((f, s, ts) for (f, s), ts in times.items()), key=lambda e: (e[2], e[0], e[1]))
    entries = add_events(db, case_id, found, actor, position)
    missing = len(wanted) - len(found)
    if missing:
        logger.info("story of case %d: %d events asked for are not in the index", case_id, missing)
    return Added(entries, len(found) - len(entries), missing)


def _item(session: Session, case_id: int, item_id: int) -> StoryItem:
    row = session.get(StoryItem, item_id)
    if row is None or row.case_id != case_id:
        raise LookupError(f"no story item {item_id}")
    return row


def edit_text(db: Database, case_id: int, item_id: int, text: str, actor: str) -> Entry:
    """Replace a text block's text (an event item has no text of its own)."""
    ensure_open(db, case_id)
    with db.session() as session:
        row = _item(session, case_id, item_id)
        if row.kind is not StoryItemKind.TEXT:
            raise CasescopeError("only a text block has text to edit")
        row.text = _check_text(text)
        row.updated_by, row.updated_at = actor, utcnow()
        return _entry(row)


def remove(db: Database, case_id: int, item_id: int) -> Entry:
    """Take an item out of the story; what it was."""
    ensure_open(db, case_id)
    with db.session() as session:
        row = _item(session, case_id, item_id)
        gone = _entry(row)
        session.delete(row)
        rest = [r for r in _rows(session, case_id) if r.id != item_id]
        for number, other in enumerate(rest):
            other.position = number
        return gone


def move(db: Database, case_id: int, item_id: int, to: int) -> Entry:
    """Move an item to position `to` (0-based, clamped to the story)."""
    ensure_open(db, case_id)
    with db.session() as session:
        row = _item(session, case_id, item_id)
        rest = [r for r in _rows(session, case_id) if r.id != item_id]
        _place(rest, [row], to)
        return _entry(row)


def reorder(db: Database, case_id: int, ids: Sequence[int]) -> list[Entry]:
    """Put the whole story in the order of `ids`, which must name each item once."""
    ensure_open(db, case_id)
    with db.session() as session:
        rows = {row.id: row for row in _rows(session, case_id)}
        if len(ids) != len(rows) or set(ids) != set(rows):
            raise CasescopeError("the new order must name every item of the story once")
        for number, item_id in enumerate(ids):
            rows[item_id].position = number
        return [_entry(rows[item_id]) for item_id in ids]


def marked_keys(db: Database, case_id: int, mark: EventMark, label: str = "") -> list[EventKey]:
    """The events of the case with a star, or a tag (`label`: that tag only), by key."""
    query = select(EventMarkRecord.file_id, EventMarkRecord.seq).where(
        EventMarkRecord.case_id == case_id, EventMarkRecord.kind == mark
    )
    if label.strip():
        query = query.where(EventMarkRecord.label == label.strip())
    with db.read() as session:
        return sorted({(int(f), int(s)) for f, s in session.execute(query.distinct())})


def story_size(db: Database, case_id: int) -> int:
    with db.read() as session:
        count = session.scalar(select(func.count()).where(StoryItem.case_id == case_id))
        return int(count or 0)
