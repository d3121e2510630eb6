"""The detection timeline: every hit in time order with its event's one-line summary (the
view Hayabusa prints), paged for the web app and streamed for the CLI.

Hits are read from the detections table in keyset order (time, then detection id: a page
deep in the timeline costs what the first does), a page or chunk at a time, and each
chunk's events are fetched from the index by key (`store.event_lookup`) for their summary.
Hits without a time come first, as their events sit at the epoch in the index.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, bindparam, or_, select, update

from casescope.model.db import Database
from casescope.model.enums import IndexState
from casescope.model.tables import Detection, EvidenceFile
from casescope.services.detections import (
    DetectionFilter,
    DetectionFilterError,
    RuleInfo,
    matching_rules,
    sql_clauses,
)
from casescope.store.event_lookup import events_by_key
from casescope.store.summary import summarise

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: Hits per chunk of a streamed timeline (one DB read and one index lookup each).
CHUNK_HITS = 1000
#: Most hits on one page.
MAX_PAGE = 500
UseIndex = Callable[[], "AbstractContextManager[EventIndex]"]


@dataclass(frozen=True)
class TimelineCursor:
    """The last hit shown: its time (None: a hit without one) and detection id."""

    ts: datetime | None
    id: int

    def encode(self) -> str:
        ts = self.ts.replace(tzinfo=None).isoformat() if self.ts else None
        return base64.urlsafe_b64encode(orjson.dumps([ts, self.id])).decode()

    @classmethod
    def decode(cls, text: str) -> TimelineCursor:
        try:
            ts, ident = orjson.loads(base64.urlsafe_b64decode(text.encode()))
            moment = datetime.fromisoformat(ts) if ts is not None else None
            return cls(moment.replace(tzinfo=None) if moment else None, int(ident))
        except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise DetectionFilterError("not a timeline cursor") from exc


@dataclass(frozen=True)
class TimelineRow:
    ts: datetime | None
    computer: str
    level: str
    rule_title: str
    summary: str
    rule_uid: str
    rule_id: int
    techniques: tuple[str, ...]
    tactics: tuple[str, ...]
    channel: str
    event_id: int | None
    record_id: int | None
    file_id: int
    seq: int
    detection_id: int


def _after(cursor: TimelineCursor | None) -> list:
    if cursor is None:
        return []
    if cursor.ts is None:  # still among the hits without a time
        untimed = and_(Detection.ts.is_(None), Detection.id > cursor.id)
        return [or_(untimed, Detection.ts.is_not(None))]
    later = and_(Detection.ts == cursor.ts, Detection.id > cursor.id)
    return [or_(Detection.ts > cursor.ts, later)]


def _hits(db: Database, clauses: list, cursor: TimelineCursor | None, limit: int) -> list:
    query = (
        select(
            Detection.id,
            Detection.ts,
            Detection.file_id,
            Detection.seq,
            Detection.record_id,
            Detection.computer,
            Detection.rule_id,
        )
        .where(*clauses, *_after(cursor))
        .order_by(Detection.ts.asc().nulls_first(), Detection.id)
        .limit(limit)
    )
    with db.read() as session:
        return list(session.execute(query))


def _summary(event: dict) -> str:
    if not event:
        return ""  # not in the index (yet)
    channel, provider = event.get("channel", ""), event.get("provider", "")
    return summarise(channel, provider, event.get("event_id"), event.get("fields") or {})


def _row(hit: Any, rule: RuleInfo, event: dict) -> TimelineRow:
    return TimelineRow(
        ts=hit.ts.replace(tzinfo=UTC) if hit.ts else None,
        computer=hit.computer or event.get("computer", ""),
        level=rule.level,
        rule_title=rule.title,
        summary=_summary(event),
        rule_uid=rule.rule_uid,
        rule_id=rule.id,
        techniques=rule.attack.techniques,
        tactics=tuple(t.short for t in rule.attack.tactics),
        channel=event.get("channel", ""),
        event_id=event.get("event_id"),
        record_id=hit.record_id,
        file_id=hit.file_id,
        seq=hit.seq,
        detection_id=hit.id,
    )


def _rows(
    index: EventIndex, case_id: int, hits: Sequence[Any], rules: dict[int, RuleInfo]
) -> list[TimelineRow]:
    """The hits as timeline rows, with their events' summaries (a hit of a rule that fired
    after `rules` was read is left for the next read)."""
    events = events_by_key(index, case_id, [(h.file_id, h.seq, h.ts) for h in hits])
    return [
        _row(hit, rules[hit.rule_id], events.get((hit.file_id, hit.seq), {}))
        for hit in hits
        if hit.rule_id in rules
    ]


def _selection(db: Database, filters: DetectionFilter) -> tuple[dict[int, RuleInfo], list]:
    rules = matching_rules(db, filters)
    return rules, sql_clauses(filters, rules)


def timeline_page(
    db: Database,
    use_index: UseIndex,
    filters: DetectionFilter,
    cursor: TimelineCursor | None = None,
    limit: int = 50,
) -> tuple[list[TimelineRow], TimelineCursor | None]:
    """One page of the timeline after `cursor`, and the cursor of the next (None: the end)."""
    limit = max(1, min(limit, MAX_PAGE))
    rules, clauses = _selection(db, filters)
    hits = _hits(db, clauses, cursor, limit + 1) if rules else []
    more = len(hits) > limit
    hits = hits[:limit]
    with use_index() as index:
        rows = _rows(index, filters.case_id, hits, rules)
    last = hits[-1] if more else None
    return rows, TimelineCursor(last.ts, last.id) if last is not None else None


def iter_timeline(
    db: Database, use_index: UseIndex, filters: DetectionFilter, chunk: int = CHUNK_HITS
) -> Iterator[TimelineRow]:
    """Every hit that passes `filters`, in time order, read `chunk` hits at a time (memory
    stays bounded; the index is held for one chunk's lookup at a time)."""
    rules, clauses = _selection(db, filters)
    cursor: TimelineCursor | None = None
    while rules:
        hits = _hits(db, clauses, cursor, chunk)
        if not hits:
            return
        with use_index() as index:
            yield from _rows(index, filters.case_id, hits, rules)
        if len(hits) < chunk:
            return
        cursor = TimelineCursor(hits[-1].ts, hits[-1].id)


#: Cases whose detections all have their computer (filled in by `fill_hosts`) in this process.
_FILLED: set[int] = set()


def fill_hosts(db: Database, use_index: UseIndex, case_id: int, chunk: int = CHUNK_HITS) -> int:
    """Give detections stored without their event's computer (before it was recorded) the
    computer from the index, for files loaded there; the detections changed. Once per case
    and process: detections are stored with their computer since."""
    if case_id in _FILLED:
        return 0
    loaded = select(EvidenceFile.id).where(
        EvidenceFile.case_id == case_id, EvidenceFile.index_state == IndexState.LOADED
    )
    missing = select(Detection.id, Detection.file_id, Detection.seq, Detection.ts).where(
        Detection.case_id == case_id, Detection.computer.is_(None), Detection.file_id.in_(loaded)
    )
    changed, after = 0, 0
    while True:
        with db.read() as session:
            page = missing.where(Detection.id > after).order_by(Detection.id).limit(chunk)
            hits = list(session.execute(page))
        if not hits:
            break
        with use_index() as index:
            found = events_by_key(
                index, case_id, [(h.file_id, h.seq, h.ts) for h in hits], ("computer",)
            )
        values = [
            {"hit": h.id, "host": found.get((h.file_id, h.seq), {}).get("computer", "")}
            for h in hits
        ]
        table = Detection.__table__
        statement = (
            update(table).where(table.c.id == bindparam("hit")).values(computer=bindparam("host"))
        )
        with db.session() as session:  # Core executemany: one UPDATE per detection id
            session.connection().execute(statement, values)
        changed += len(values)
        after = hits[-1].id
    _FILLED.add(case_id)
    if changed:
        logger.info("case %d: the computer of %d earlier detections filled in", case_id, changed)
    return changed
