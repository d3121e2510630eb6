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
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.story import StoryItemKind
from casescope.model.tables import AuditRecord, Case, EvidenceFile, utcnow
from casescope.model.users import EventMark
from casescope.services.annotations import Badges, badges_of
from casescope.services.marks import marks_of
from casescope.services.story import Entry, EventKey, story
from casescope.store.event_lookup import SUMMARY_COLUMNS, events_by_key
from casescope.store.summary import summarise

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


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


@dataclass(frozen=True)
class _Found:
    """What the report reads of the story's events: index rows, findings, marks, file names."""

    rows: dict[EventKey, dict[str, Any]]
    badges: dict[EventKey, Badges]
    marks: dict[EventKey, list[dict]]
    names: dict[int, str]


def _read(db: Database, index: EventIndex, case_id: int, entries: list[Entry]) -> _Found:
    wanted = [(k[0], k[1], e.ts) for e in entries if (k := e.key) is not None]
    keys = [(f, s) for f, s, _ in wanted]
    rows = events_by_key(index, case_id, wanted, (*SUMMARY_COLUMNS, "ts", "user_name"))
    return _Found(
        rows,
        badges_of(db, case_id, [k for k in keys if k in rows]),
        marks_of(db, case_id, keys),
        _file_names(db, {f for f, _ in keys}),
    )


def _event(key: EventKey, ts: datetime | None, found: _Found) -> ReportEvent:
    name = found.names.get(key[0], "")
    row = found.rows.get(key)
    if row is None:
        return ReportEvent(key[0], key[1], ts, found=False, file_name=name)
    marks = found.marks.get(key, [])
    badges = found.badges.get(key)
    channel, provider = row.get("channel") or "", row.get("provider") or ""
    return ReportEvent(
        key[0],
        key[1],
        ts,
        event_id=row.get("event_id"),
        channel=channel,
        provider=provider,
        computer=row.get("computer") or "",
        user_name=row.get("user_name") or "",
        record_id=row.get("record_id"),
        summary=summarise(channel, provider, row.get("event_id"), row.get("fields") or {}),
        file_name=name,
        detections=tuple(f"{d.level}: {d.title}" for d in badges.detections) if badges else (),
        tags=tuple(m["label"] for m in marks if m["kind"] == EventMark.TAG.value),
        starred=any(m["kind"] == EventMark.STAR.value for m in marks),
    )


def build_report(db: Database, index: EventIndex, case_id: int, by: str) -> Report:
    """The case's story as a report, every event read from the index now."""
    with db.read() as session:
        case = session.get(Case, case_id)
        if case is None:
            raise LookupError(f"no case {case_id}")
        name, description = case.name, case.description or ""
    entries = story(db, case_id)
    found = _read(db, index, case_id, entries)
    items = [
        ReportItem(
            e.id,
            e.position,
            e.kind,
            text=e.text,
            event=_event(e.key, e.ts, found) if e.key is not None else None,
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
