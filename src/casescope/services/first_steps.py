"""Where to start in a case: its most common event ids and computers, its most hit rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from casescope.model.db import Database
from casescope.services.detections import DetectionFilter, rule_hits
from casescope.services.event_search import top_values
from casescope.services.search import SearchRequest, build_where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

#: Entries of each list.
TOP = 8


@dataclass(frozen=True)
class FirstSteps:
    """(value, events) of the commonest event ids and computers, and (rule id, title, level,
    hits) of the rules with the most hits; all empty for a case without events."""

    event_ids: list[tuple[int, int]] = field(default_factory=list)
    computers: list[tuple[str, int]] = field(default_factory=list)
    rules: list[tuple[str, str, str, int]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.event_ids and not self.computers


def first_steps(db: Database, index: EventIndex, case_id: int) -> FirstSteps:
    where = build_where(SearchRequest(case_id))
    ids = top_values(index, where, "event_id", TOP).values
    hosts = top_values(index, where, "computer", TOP).values
    rules = rule_hits(db, DetectionFilter(case_id))[:TOP]
    return FirstSteps(
        [(int(v["value"]), int(v["events"])) for v in ids if v["value"] is not None],
        [(str(v["value"]), int(v["events"])) for v in hosts],
        [(r.rule.rule_uid, r.rule.title, r.rule.level, r.hits) for r in rules],
    )
