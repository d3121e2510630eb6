"""A case's report: its story with each event read from the index, ready to render.

`build_report` gathers everything a report shows (the case, who made it and when, each story
item with its event's columns, summary line, Sigma detections and tags); `report_render`
writes it as Markdown, HTML or CSV. The CLI (`casescope report`) and the web app
(`/api/cases/{id}/report`) call both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import PurePath

from sqlalchemy import select

from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.story import StoryItemKind
from casescope.model.tables import AuditRecord, Case, EvidenceFile, utcnow
from casescope.model.users import EventMark
from casescope.services.annotations import badges_of
from casescope.services.marks import marks_of
from casescope.services.story import Entry, EventKey, story
from casescope.store.event_lookup import SUMMARY_COLUMNS, events_by_key
from casescope.store.index import EventIndex
from casescope.store.summary import summarise


class ReportFormat(StrEnum):
    """What a report is written as."""

    MARKDOWN = "md"
    HTML = "html"
    CSV = "csv"

    @property
    def media_type(self) -> str:
        return _MEDIA[self]


_MEDIA = {
    ReportFormat.MARKDOWN: "text/markdown; charset=utf-8",
    ReportFormat.HTML: "text/html; charset=utf-8",
    ReportFormat.CSV: "text/csv; charset=utf-8",
}


@dataclass(frozen=True)
class ReportEvent:
    """What a report shows of one event; `found` False when the index no longer has it."""

    file_id: int
    seq: int
    ts: datetime | None
    found: bool = True
    event_id: int | None = None
    channel: str = ""
    provider: str = ""
    computer: str = ""
    user_name: str = ""
    record_id: int | None = None
    summary: str = ""
    file_name: str = ""
    detections: tuple[str, ...] = ()  # "level: rule title"
    tags: tuple[str, ...] = ()
    starred: bool = False


@dataclass(frozen=True)
class ReportItem:
    id: int
    position: int
    kind: StoryItemKind
    text: str = ""
    event: ReportEvent | None = None
    by: str = ""


@dataclass(frozen=True)
class Report:
    case_id: int
    case_name: str
    description: str
    generated_at: datetime
    generated_by: str
    items: list[ReportItem] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return sum(1 for item in self.items if item.kind is StoryItemKind.EVENT)


def _file_names(db: Database, file_ids: set[int]) -> dict[int, str]:
    if not file_ids:
        return {}
    with db.read() as session:
        rows = session.execute(
            select(EvidenceFile.id, EvidenceFile.original_path).where(
                EvidenceFile.id.in_(sorted(file_ids))
            )
        )
        return {int(i): PurePath(path).name for i, path in rows}


def _events(db: Database, index: EventIndex, case_id: int, entries: list[Entry]) -> dict:
    """Each story event as a ReportEvent, by key."""
    wanted = [(e.file_id, e.seq, e.ts) for e in entries if e.key is not None]
    keys: list[EventKey] = [(f, s) for f, s, _ in wanted]  # type: ignore[misc]
    rows = events_by_key(index, case_id, wanted, (*SUMMARY_COLUMNS, "ts", "user_name"))  # type: ignore[arg-type]
    badges = badges_of(db, case_id, [k for k in keys if k in rows])
    marks = marks_of(db, case_id, keys)
    names = _file_names(db, {f for f, _ in keys})
    out = {}
    for entry in entries:
        key = entry.key
        if key is None:
            continue
        row = rows.get(key)
        if row is None:
            name = names.get(key[0], "")
            out[key] = ReportEvent(key[0], key[1], entry.ts, found=False, file_name=name)
            continue
        mine = marks.get(key, [])
        found = badges.get(key)
        out[key] = ReportEvent(
            key[0],
            key[1],
            entry.ts,
            event_id=row.get("event_id"),
            channel=row.get("channel") or "",
            provider=row.get("provider") or "",
            computer=row.get("computer") or "",
            user_name=row.get("user_name") or "",
            record_id=row.get("record_id"),
            summary=summarise(
                row.get("channel") or "",
                row.get("provider") or "",
                row.get("event_id"),
                row.get("fields") or {},
            ),
            file_name=names.get(key[0], ""),
            detections=tuple(f"{d.level}: {d.title}" for d in found.detections) if found else (),
            tags=tuple(m["label"] for m in mine if m["kind"] == EventMark.TAG.value),
            starred=any(m["kind"] == EventMark.STAR.value for m in mine),
        )
    return out


def build_report(db: Database, index: EventIndex, case_id: int, by: str) -> Report:
    """The case's story as a report, every event read from the index now."""
    with db.read() as session:
        case = session.get(Case, case_id)
        if case is None:
            raise LookupError(f"no case {case_id}")
        name, description = case.name, case.description or ""
    entries = story(db, case_id)
    events = _events(db, index, case_id, entries)
    items = [
        ReportItem(
            e.id,
            e.position,
            e.kind,
            text=e.text,
            event=events.get(e.key) if e.key is not None else None,
            by=e.updated_by or e.created_by,
        )
        for e in entries
    ]
    return Report(case_id, name, description, utcnow(), by, items)


def record_export(db: Database, case_id: int, actor: str, fmt: ReportFormat, items: int) -> None:
    """The audit row of a report written (as the web app records its downloads)."""
    with db.session() as session:
        session.add(
            AuditRecord(
                actor=actor,
                action=AuditAction.REPORT_EXPORT,
                case_id=case_id,
                detail=f"{fmt.value}, {items} items",
            )
        )
