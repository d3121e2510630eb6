"""The audit log a page at a time: people's actions apart from pipeline steps (both kept),
filtered by action, user, case and time range, sorted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.enums import AuditAction, AuditKind
from casescope.model.tables import AuditRecord
from casescope.services.evidence_list import SortOrder

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
MAX_ACTOR_FILTER = 100


class AuditView(StrEnum):
    """The audit page's tabs: one kind of row, or every row."""

    ACTIONS = "actions"  # what people did (web, CLI, API token)
    SYSTEM = "system"  # what casescope did on its own (intake, the worker pool)
    STEPS = "steps"  # the pipeline's steps, one row per step of each file
    ALL = "all"

    @property
    def kind(self) -> AuditKind | None:
        return _VIEW_KINDS.get(self)


_VIEW_KINDS = {
    AuditView.ACTIONS: AuditKind.ACTION,
    AuditView.SYSTEM: AuditKind.SYSTEM,
    AuditView.STEPS: AuditKind.STEP,
}
_KIND_VIEWS = {kind: view for view, kind in _VIEW_KINDS.items()}


class AuditSort(StrEnum):
    AT = "at"
    ACTOR = "actor"
    ACTION = "action"
    CASE = "case"

    @property
    def column(self) -> InstrumentedAttribute:
        return _SORT_COLUMNS[self]


_SORT_COLUMNS = {
    AuditSort.AT: AuditRecord.id,  # ids grow with time, and are indexed
    AuditSort.ACTOR: AuditRecord.actor,
    AuditSort.ACTION: AuditRecord.action,
    AuditSort.CASE: AuditRecord.case_id,
}


def read_time(text: str, zone: str = "UTC") -> datetime | None:
    """`text` (ISO 8601) as UTC, None when blank; a time without an offset is one of `zone`
    (the viewer's, on a page). A clear error for anything else, the year 1 or 9999 moved
    past the calendar's range included."""
    if not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(zone))
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise CasescopeError(f"not an ISO 8601 time ({text[:40]!r})") from None


def actions_of(kind: AuditKind) -> list[AuditAction]:
    return [action for action in AuditAction if action.kind is kind]


@dataclass(frozen=True)
class AuditQuery:
    view: AuditView = AuditView.ACTIONS
    action: AuditAction | None = None
    actor: str = ""  # part of the actor (`web:alice`, `cli`, `system`), any case
    case_id: int | None = None
    since: datetime | None = None  # UTC, inclusive
    until: datetime | None = None  # UTC, exclusive
    sort: AuditSort = AuditSort.AT
    order: SortOrder = SortOrder.DESC
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: AuditAction
    case_id: int | None
    file_id: int | None
    ok: bool
    detail: str


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    total: int
    query: AuditQuery
    by_view: dict[AuditView, int]  # rows of each tab under the other filters

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(query: Select, wanted: AuditQuery, view: AuditView) -> Select:
    """`query` under every filter of `wanted`, with `view` as the tab."""
    if view.kind is not None:
        query = query.where(AuditRecord.action.in_(actions_of(view.kind)))
    if wanted.action is not None:
        query = query.where(AuditRecord.action == wanted.action)
    if wanted.actor:
        pattern = _like(wanted.actor[:MAX_ACTOR_FILTER].lower())
        query = query.where(func.lower(AuditRecord.actor).like(pattern, escape="\\"))
    if wanted.case_id is not None:
        query = query.where(AuditRecord.case_id == wanted.case_id)
    if wanted.since is not None:
        query = query.where(AuditRecord.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditRecord.at < wanted.until)
    return query


def row_dict(row: AuditRow) -> dict:
    """A row as `audit_rows` writes it (the CLI's JSONL/CSV and the older API route)."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action.value,
        "case_id": row.case_id,
        "file_id": row.file_id,
        "ok": row.ok,
        "detail": row.detail,
    }


def _count_views(session: Session, wanted: AuditQuery) -> dict[AuditView, int]:
    """Rows of every tab under the other filters, in one pass: counts per action, summed
    by kind (a count per tab was a scan per tab: bench/audit_page.py)."""
    per_action = session.execute(
        _filtered(select(AuditRecord.action, func.count()), wanted, AuditView.ALL).group_by(
            AuditRecord.action
        )
    )
    by_view = dict.fromkeys(AuditView, 0)
    for action, count in per_action:
        by_view[AuditView.ALL] += count
        by_view[_KIND_VIEWS[AuditAction(action).kind]] += count
    return by_view


def audit_page(db: Database, wanted: AuditQuery) -> AuditPage:
    column = wanted.sort.column
    ordering = column.desc() if wanted.order is SortOrder.DESC else column.asc()
    tiebreak = AuditRecord.id.desc() if wanted.order is SortOrder.DESC else AuditRecord.id
    query = (
        _filtered(select(AuditRecord), wanted, wanted.view)
        .order_by(ordering, tiebreak)
        .limit(wanted.per_page)
        .offset((wanted.page - 1) * wanted.per_page)
    )
    with db.read() as session:
        by_view = _count_views(session, wanted)
        rows = [
            AuditRow(r.id, r.at, r.actor, r.action, r.case_id, r.file_id, r.ok, r.detail)
            for r in session.scalars(query)
        ]
    return AuditPage(rows, by_view[wanted.view], wanted, by_view)
