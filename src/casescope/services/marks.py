"""Tags, stars and hidden marks on events (kept in the metadata DB, not the index).

A mark names its event by (file id, seq) and keeps who set it and when. Marks are set and
cleared one event at a time or in bulk (a selection, or every match of a search:
`services/bulk_marks.py`); the query language finds events by them (`tag:NAME`,
`is:starred`, `is:hidden`, `has:tag`; `services/mark_search.py` answers them for a case).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, bindparam, delete, func, select
from sqlalchemy.orm import Session

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.tables import utcnow
from casescope.model.users import EventMark, EventMarkRecord
from casescope.services.case_lifecycle import ensure_open
from casescope.store.query import Literal, Marked
from casescope.store.query_ast import MarkField, MarkState, Pattern
from casescope.store.query_sql import like_pattern, lowered_parts
from casescope.store.where import EventKey

logger = logging.getLogger(__name__)

#: The longest tag (the column's width).
MAX_LABEL = 100


@dataclass(frozen=True)
class TagCount:
    """One tag of a case: how many events carry it and when it was last set."""

    label: str
    events: int
    last_at: datetime


def mark_label(mark: EventMark, label: str) -> str:
    """The label stored for a mark: a tag's trimmed text (required), "" for the others."""
    if mark is not EventMark.TAG:
        return ""
    label = label.strip()
    if not label:
        raise CasescopeError("a tag needs a label")
    if len(label) > MAX_LABEL:
        raise CasescopeError(f"a tag has at most {MAX_LABEL} characters")
    return label


def marked_events(db: Database, case_id: int, kind: EventMark) -> tuple[tuple[int, int], ...]:
    """The (file_id, seq) of every event of the case with a mark of this kind."""
    with db.read() as session:
        rows = session.execute(
            select(EventMarkRecord.file_id, EventMarkRecord.seq)
            .where(EventMarkRecord.case_id == case_id, EventMarkRecord.kind == kind)
            .distinct()
        )
        return tuple((f, s) for f, s in rows)


def _insert_new(session: Session) -> Insert:
    """An insert of marks that leaves out those already there (the table's unique key)."""
    # the dialect in use is imported here, not at the top: importing PostgreSQL's dialect
    # on SQLite made every command that reads marks (`search`) start slower (bench/cli.py)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(EventMarkRecord.__table__).on_conflict_do_nothing()  # Core: no ORM per row


def _count(session: Session, case_id: int, mark: EventMark, label: str) -> int:
    query = select(func.count(EventMarkRecord.id)).where(
        EventMarkRecord.case_id == case_id,
        EventMarkRecord.kind == mark,
        EventMarkRecord.label == label,
    )
    return session.scalar(query) or 0


def set_marks(
    db: Database,
    case_id: int,
    events: Sequence[EventKey],
    mark: EventMark,
    label: str,
    actor: str,
) -> int:
    """Put one mark on each of `events` that lacks it, in one transaction; how many.

    One multi-row insert that skips the marks already there (bench/marks.py: 100,000 ORM
    objects after a lookup of which existed took 35 s)."""
    ensure_open(db, case_id)
    label = mark_label(mark, label)
    now = utcnow()
    rows = [
        {
            "case_id": case_id,
            "file_id": f,
            "seq": s,
            "kind": mark,
            "label": label,
            "actor": actor,
            "created_at": now,
        }
        for f, s in sorted(set(events))
    ]
    if not rows:
        return 0
    with db.session() as session:
        before = _count(session, case_id, mark, label)
        session.execute(_insert_new(session), rows)
        return _count(session, case_id, mark, label) - before


def clear_marks(
    db: Database, case_id: int, events: Sequence[EventKey], mark: EventMark, label: str = ""
) -> int:
    """Remove one mark from each of `events` that has it, in one transaction; how many."""
    ensure_open(db, case_id)
    label = label.strip() if mark is EventMark.TAG else ""
    keys = [{"f": f, "s": s} for f, s in sorted(set(events))]
    if not keys:
        return 0
    table = EventMarkRecord.__table__
    statement = delete(table).where(
        table.c.case_id == case_id,
        table.c.kind == mark,
        table.c.label == label,
        table.c.file_id == bindparam("f"),
        table.c.seq == bindparam("s"),
    )
    with db.session() as session:
        before = _count(session, case_id, mark, label)
        session.execute(statement, keys)
        return before - _count(session, case_id, mark, label)


def marks_of(
    db: Database, case_id: int, events: list[tuple[int, int]]
) -> dict[tuple[int, int], list[dict]]:
    """The marks of the given events (for a page of results): kind, label, who and when."""
    if not events:
        return {}
    files = sorted({f for f, _ in events})
    wanted = set(events)
    out: dict[tuple[int, int], list[dict]] = {}
    with db.read() as session:
        rows = session.scalars(
            select(EventMarkRecord)
            .where(EventMarkRecord.case_id == case_id, EventMarkRecord.file_id.in_(files))
            .order_by(EventMarkRecord.id)
        )
        for row in rows:
            key = (row.file_id, row.seq)
            if key in wanted:
                out.setdefault(key, []).append(
                    {
                        "kind": row.kind.value,
                        "label": row.label,
                        "by": row.actor,
                        "at": row.created_at,
                    }
                )
    return out


def tag_counts(db: Database, case_id: int) -> list[TagCount]:
    """Every tag of the case with its number of events, most used first."""
    query = (
        select(
            EventMarkRecord.label,
            func.count(EventMarkRecord.id),
            func.max(EventMarkRecord.created_at),
        )
        .where(EventMarkRecord.case_id == case_id, EventMarkRecord.kind == EventMark.TAG)
        .group_by(EventMarkRecord.label)
        .order_by(func.count(EventMarkRecord.id).desc(), EventMarkRecord.label)
    )
    with db.read() as session:
        return [TagCount(label, count, at) for label, count, at in session.execute(query)]


def like_of(value: Literal | Pattern, *, anchored: bool) -> str:
    """A query value as a lower-case LIKE pattern (`\\` escapes): the whole text when
    `anchored`, else anywhere in it."""
    parts = lowered_parts(value)
    if not anchored:
        parts = [("*", True), *parts, ("*", True)]
    return like_pattern(parts)


def _tagged(db: Database, case_id: int, value: Literal | Pattern) -> tuple[EventKey, ...]:
    query = select(EventMarkRecord.file_id, EventMarkRecord.seq).where(
        EventMarkRecord.case_id == case_id, EventMarkRecord.kind == EventMark.TAG
    )
    if not (isinstance(value, Pattern) and value.glob.strip("*") == ""):
        pattern = like_of(value, anchored=True)
        query = query.where(func.lower(EventMarkRecord.label).like(pattern, escape="\\"))
    with db.read() as session:
        return tuple((f, s) for f, s in session.execute(query.distinct()))


#: The mark kind each `is:` / `has:` state reads (`has:note` is answered by the notes).
STATE_MARKS = {
    MarkState.STARRED: EventMark.STAR,
    MarkState.HIDDEN: EventMark.HIDDEN,
    MarkState.TAG: EventMark.TAG,
}


def mark_events(db: Database, case_id: int, term: Marked) -> tuple[EventKey, ...]:
    """The events of one mark term of a query (`tag:`, `is:`, `has:tag`) in the case."""
    if term.field is MarkField.TAG:
        return _tagged(db, case_id, term.value)
    if not isinstance(term.value, Literal) or term.value.text not in STATE_MARKS:
        raise CasescopeError(f"{term.field}:{term.value} is not a mark")
    return marked_events(db, case_id, STATE_MARKS[MarkState(term.value.text)])
