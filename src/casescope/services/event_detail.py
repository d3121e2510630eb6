"""One event as an analyst reads it: its matched rules (with their logic), its IOC hits,
the events around it on its computer, and its neighbours in the search it was opened from.

Context and neighbours are keyset pages of the search service (`event_search.search_page`):
the event's own key (time, file, seq, and the sort column) is the cursor, so the previous
and next events of a search are one `LIMIT 1` query each, at any depth of the result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, select, tuple_

from casescope.detect.attack import AttackTags, parse_tags
from casescope.detect.levels import level_rank
from casescope.detect.rule_doc import describe, nth_of_path
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.tables import Detection, IocHit, Rule
from casescope.model.tables import Ioc as IocRow
from casescope.services import event_search as es
from casescope.services.process_records import as_datetime
from casescope.store.process_events import TimeWindow, window_where
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

EventRef = tuple[int, int]
#: Minutes either side of an event that its context covers, by default and at most.
CONTEXT_MINUTES = 5
MAX_CONTEXT_MINUTES = 24 * 60
#: Events shown either side of the event itself; a page of earlier or later ones.
CONTEXT_SIDE = 25
CONTEXT_PAGE = 50


@dataclass(frozen=True)
class RuleHit:
    rule_uid: str
    title: str
    level: str
    status: str
    attack: AttackTags
    description: str
    logic: str  # the rule's `detection:` (or `correlation:`) block


def rule_hits(db: Database, case_id: int, ref: EventRef) -> list[RuleHit]:
    """The rules that matched the event, highest level first."""
    with db.read() as session:
        rows = session.execute(
            select(
                Rule.rule_uid, Rule.title, Rule.level, Rule.status, Rule.tags, Rule.yaml, Rule.path
            )
            .join(Detection, Detection.rule_id == Rule.id)
            .where(Detection.case_id == case_id, Detection.file_id == ref[0])
            .where(Detection.seq == ref[1])
            .distinct()
        ).all()
    hits = []
    for uid, title, level, status, tags, text, path in rows:
        doc = describe(text or "", uid, nth_of_path(path))
        attack = parse_tags(tags or "")
        hits.append(RuleHit(uid, title, level, status, attack, doc.description, doc.detection))
    return sorted(hits, key=lambda h: (-level_rank(h.level), h.title))


@dataclass(frozen=True)
class IocMatch:
    ioc_id: int
    type: str
    value: str
    field: str
    excerpt: str


def ioc_matches(db: Database, case_id: int, ref: EventRef) -> list[IocMatch]:
    """The IOCs that hit the event, and in which field."""
    with db.read() as session:
        rows = session.execute(
            select(IocHit.ioc_id, IocRow.type, IocRow.value, IocHit.field, IocHit.excerpt)
            .join(IocRow, IocRow.id == IocHit.ioc_id)
            .where(IocHit.case_id == case_id, IocHit.file_id == ref[0], IocHit.seq == ref[1])
            .order_by(IocHit.ioc_id, IocHit.field)
        ).all()
    return [IocMatch(*row) for row in rows]


@dataclass(frozen=True)
class Badge:
    """Detections of one event: how many rules, and the highest level."""

    count: int
    level: str


def detection_badges(db: Database, case_id: int, refs: Iterable[EventRef]) -> dict[EventRef, Badge]:
    """Badges of the events that have detections (others are left out)."""
    wanted = sorted(set(refs))
    out: dict[EventRef, Badge] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        with db.read() as session:
            rows = session.execute(
                select(Detection.file_id, Detection.seq, Rule.level, func.count())
                .join(Rule, Rule.id == Detection.rule_id)
                .where(Detection.case_id == case_id)
                .where(tuple_(Detection.file_id, Detection.seq).in_(chunk))
                .group_by(Detection.file_id, Detection.seq, Rule.level)
            ).all()
        for file_id, seq, level, count in rows:
            ref = (file_id, seq)
            old = out.get(ref)
            top = level if old is None or level_rank(level) > level_rank(old.level) else old.level
            out[ref] = Badge((old.count if old else 0) + count, top)
    return out


def pretty_json(raw: str) -> str:
    """The original record indented for reading (as it is, when it is not JSON)."""
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw


# ---------------------------------------------------------------- context and neighbours


def cursor_of(row: dict[str, Any], sort: es.SortKey = es.SortKey.TIME) -> es.Cursor:
    """The keyset cursor that points at `row` (in `sort` order)."""
    ts = as_datetime(row["ts"]) or datetime(1970, 1, 1)
    text = ts.strftime(es.TS_FORMAT)
    return es.Cursor(text, int(row["file_id"]), int(row["seq"]), es.sort_value(row, sort))


@dataclass
class ContextPage:
    """Events on the event's computer within ± `minutes`, in time order."""

    minutes: int
    rows: list[dict[str, Any]]
    total: int
    total_exact: bool
    #: Cursors for the page before the first row and after the last (None: no more).
    earlier: str | None = None
    later: str | None = None


@dataclass(frozen=True)
class ContextCursors:
    """Which page of an event's context: the one before `before` or after `after` (cursors
    of `ContextPage.earlier` / `later`); neither: the events either side of the event."""

    before: str | None = None
    after: str | None = None


def check_minutes(minutes: int) -> int:
    if not 1 <= minutes <= MAX_CONTEXT_MINUTES:
        raise CasescopeError(f"context minutes must be 1 to {MAX_CONTEXT_MINUTES}")
    return minutes


def context(
    index: EventIndex,
    case_id: int,
    event: dict[str, Any],
    minutes: int = CONTEXT_MINUTES,
    page: ContextCursors = ContextCursors(),
) -> ContextPage:
    """The events around `event` on its computer. Without a cursor: `CONTEXT_SIDE` before
    it, itself, `CONTEXT_SIDE` after; with one: a page of `CONTEXT_PAGE` before
    `page.before` or after `page.after`."""
    check_minutes(minutes)
    at = as_datetime(event["ts"]) or datetime(1970, 1, 1)
    span = timedelta(minutes=minutes)
    where = window_where(case_id, event["computer"], TimeWindow(at - span, at + span))
    total, exact = es.count_matches(index, where)
    before, after = page.before, page.after
    if before or after:
        cursor = es.Cursor.decode(before or after or "")
        rows, more = _side(index, where, cursor, descending=bool(before), limit=CONTEXT_PAGE)
        first, last = (rows[0], rows[-1]) if rows else (None, None)
        earlier = cursor_of(first).encode() if first and (after or more) else None
        later = cursor_of(last).encode() if last and (before or more) else None
        return ContextPage(minutes, rows, total, exact, earlier, later)
    here = cursor_of(event)
    older, more_older = _side(index, where, here, descending=True, limit=CONTEXT_SIDE)
    newer, more_newer = _side(index, where, here, descending=False, limit=CONTEXT_SIDE)
    rows = [*older, event, *newer]
    earlier = cursor_of(rows[0]).encode() if more_older else None
    later = cursor_of(rows[-1]).encode() if more_newer else None
    return ContextPage(minutes, rows, total, exact, earlier, later)


def _side(
    index: EventIndex,
    where: Where,
    cursor: es.Cursor,
    *,
    descending: bool,
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """`limit` events after `cursor` (before it when `descending`), in time order, and
    whether there are more."""
    spec = es.PageSpec(cursor, limit, es.SortKey.TIME, descending)
    found = es.search_page(index, where, spec, with_total=False)
    rows = list(reversed(found.rows)) if descending else found.rows
    return rows, found.next_cursor is not None


def neighbours(
    index: EventIndex,
    where: Where,
    event: dict[str, Any],
    order: es.Ordering,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The events just before and just after `event` in the search `where`, sorted in
    `order`, whether or not `event` itself matches it."""
    here = cursor_of(event, order.sort)
    out = []
    for flip in (True, False):
        spec = es.PageSpec(here, 1, order.sort, order.descending != flip)
        rows = es.search_page(index, where, spec, with_total=False).rows
        out.append(rows[0] if rows else None)
    return out[0], out[1]
