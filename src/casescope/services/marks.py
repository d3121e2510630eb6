"""Tags, stars and hidden marks on events (kept in the metadata DB, not the index)."""

from __future__ import annotations

from sqlalchemy import select

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.users import EventMark, EventMarkRecord


def marked_events(db: Database, case_id: int, kind: EventMark) -> tuple[tuple[int, int], ...]:
    """The (file_id, seq) of every event of the case with a mark of this kind."""
    with db.read() as session:
        rows = session.execute(
            select(EventMarkRecord.file_id, EventMarkRecord.seq)
            .where(EventMarkRecord.case_id == case_id, EventMarkRecord.kind == kind)
            .distinct()
        )
        return tuple((f, s) for f, s in rows)


def set_mark(
    db: Database, case_id: int, event: tuple[int, int], mark: EventMark, label: str, actor: str
) -> None:
    """Add a tag/star/hide to one event (idempotent)."""
    file_id, seq = event
    label = label.strip()[:100] if mark is EventMark.TAG else ""
    if mark is EventMark.TAG and not label:
        raise CasescopeError("a tag needs a label")
    with db.session() as session:
        exists = session.scalar(
            select(EventMarkRecord.id).where(
                EventMarkRecord.case_id == case_id,
                EventMarkRecord.file_id == file_id,
                EventMarkRecord.seq == seq,
                EventMarkRecord.kind == mark,
                EventMarkRecord.label == label,
            )
        )
        if exists is None:
            session.add(
                EventMarkRecord(
                    case_id=case_id, file_id=file_id, seq=seq, kind=mark, label=label, actor=actor
                )
            )


def clear_mark(
    db: Database, case_id: int, event: tuple[int, int], mark: EventMark, label: str = ""
) -> None:
    with db.session() as session:
        rows = session.scalars(
            select(EventMarkRecord).where(
                EventMarkRecord.case_id == case_id,
                EventMarkRecord.file_id == event[0],
                EventMarkRecord.seq == event[1],
                EventMarkRecord.kind == mark,
                EventMarkRecord.label == label.strip(),
            )
        )
        for row in rows:
            session.delete(row)


def marks_of(
    db: Database, case_id: int, events: list[tuple[int, int]]
) -> dict[tuple[int, int], list[dict]]:
    """The marks of the given events (for a page of results)."""
    if not events:
        return {}
    files = sorted({f for f, _ in events})
    wanted = set(events)
    out: dict[tuple[int, int], list[dict]] = {}
    with db.read() as session:
        rows = session.scalars(
            select(EventMarkRecord).where(
                EventMarkRecord.case_id == case_id, EventMarkRecord.file_id.in_(files)
            )
        )
        for row in rows:
            key = (row.file_id, row.seq)
            if key in wanted:
                out.setdefault(key, []).append(
                    {"kind": row.kind.value, "label": row.label, "by": row.actor}
                )
    return out
