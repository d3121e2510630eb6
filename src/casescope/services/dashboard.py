"""The numbers of a case's dashboard: files, events, detections by level, IOC hits.

Its events-over-time chart is the timeline of the case (services/timeline.py), which the
page fetches from `GET /api/cases/{id}/histogram` like the search page does."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from casescope.detect.levels import level_rank
from casescope.model.db import Database
from casescope.model.enums import FileStatus
from casescope.services.detections import DetectionFilter, rule_hits
from casescope.services.ioc_hits import HitFilter, hit_summary
from casescope.services.status import collect_status

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


@dataclass
class Dashboard:
    files_by_status: dict[str, int] = field(default_factory=dict)
    hidden_files: int = 0
    events_parsed: int = 0
    events_indexed: int = 0
    detections_by_level: dict[str, int] = field(default_factory=dict)
    ioc_hits: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _most_severe_first(item: tuple[str, int]) -> tuple[int, str]:
    """Critical first, informational last, then levels no rule set knows (`unknown`)."""
    return (-level_rank(item[0]), item[0])


def _pipeline_order(item: tuple[str, int]) -> int:
    """Statuses in `FileStatus` order (queued ... completed, failed, rejected)."""
    return list(FileStatus).index(FileStatus(item[0]))


def build_dashboard(db: Database, index: EventIndex, case_id: int) -> Dashboard:
    status = collect_status(db, case_id=case_id, index=index, stale_after=0, max_failures=0)
    board = Dashboard(
        files_by_status=status.files_by_status,
        hidden_files=status.hidden_files,
        events_parsed=status.events_parsed,
        events_indexed=status.events_indexed or 0,
    )
    by_level: dict[str, int] = {}
    for item in rule_hits(db, DetectionFilter(case_id)):
        key = item.rule.level or "unknown"
        by_level[key] = by_level.get(key, 0) + item.hits
    board.detections_by_level = dict(sorted(by_level.items(), key=_most_severe_first))
    board.files_by_status = dict(sorted(board.files_by_status.items(), key=_pipeline_order))
    board.ioc_hits = sum(s.hits for s in hit_summary(db, HitFilter(case_id)))
    return board
