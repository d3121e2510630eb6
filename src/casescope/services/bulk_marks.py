"""Marks put on or taken off many events at once: a selection of rows, or every match of a
search (up to CASESCOPE_BULK_MARK_MAX_EVENTS: a larger search is refused, not cut short)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.tables import AuditRecord
from casescope.model.users import EventMark
from casescope.services.marks import clear_marks, mark_label, set_marks
from casescope.store.event_queries import matching_keys
from casescope.store.where import EventKey, Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: Event keys written into an audit row's detail (the count is always there).
AUDITED_KEYS = 20


@dataclass(frozen=True)
class MarkChange:
    """One mark put on (`add`) or taken off events; `label` is a tag's (else "")."""

    mark: EventMark
    label: str = ""
    add: bool = True


@dataclass(frozen=True)
class BulkResult:
    events: int  # events named (a selection) or matched (a search)
    changed: int  # events that got or lost the mark (the others had it, or lacked it)


def search_events(index: EventIndex, where: Where, most: int) -> list[EventKey]:
    """Every match of a search, refused (CasescopeError) when there are more than `most`."""
    keys = matching_keys(index, where, most + 1)
    if len(keys) > most:
        raise CasescopeError(
            f"the search matches more than {most:,} events "
            "(CASESCOPE_BULK_MARK_MAX_EVENTS): narrow it first"
        )
    return keys


def apply_change(
    db: Database, case_id: int, events: Sequence[EventKey], change: MarkChange, actor: str
) -> BulkResult:
    """Put the mark on each of `events` (or take it off), in one transaction."""
    label = mark_label(change.mark, change.label)
    if change.add:
        changed = set_marks(db, case_id, events, change.mark, label, actor)
    else:
        changed = clear_marks(db, case_id, events, change.mark, label)
    logger.info(
        "case %s: %s %s%s on %d of %d events by %s",
        case_id,
        "set" if change.add else "cleared",
        change.mark.value,
        f" {label!r}" if label else "",
        changed,
        len(set(events)),
        actor,
    )
    return BulkResult(len(set(events)), changed)


def audit_change(
    db: Database,
    actor: str,
    case_id: int,
    change: MarkChange,
    events: Sequence[EventKey],
    extra: dict[str, object] | None = None,
) -> None:
    """One audit row for a mark change on `events`: how many, the tag, the first keys, and
    `extra` (what changed, the search)."""
    keys = sorted(set(events))
    detail: dict[str, object] = {"events": len(keys)}
    if change.label.strip():
        detail["label"] = change.label.strip()
    detail["keys"] = [f"{f}:{s}" for f, s in keys[:AUDITED_KEYS]]
    detail.update(extra or {})
    row = AuditRecord(
        actor=actor[:100],
        action=change.mark.audit_action(change.add),
        case_id=case_id,
        detail=orjson.dumps(detail).decode()[:2000],
    )
    with db.session() as session:
        session.add(row)
