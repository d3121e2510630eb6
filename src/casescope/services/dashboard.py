"""The numbers of a case's dashboard: files, events, detections by level, IOC hits, histogram."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from casescope.model.db import Database
from casescope.services.detections import DetectionFilter, summary
from casescope.services.ioc_hits import HitFilter, hit_summary
from casescope.services.status import collect_status
from casescope.store.events_table import DATABASE
from casescope.store.index import EventIndex

HISTOGRAM_BUCKETS = 60


@dataclass
class Dashboard:
    files_by_status: dict[str, int] = field(default_factory=dict)
    hidden_files: int = 0
    events_parsed: int = 0
    events_indexed: int = 0
    detections_by_level: dict[str, int] = field(default_factory=dict)
    ioc_hits: int = 0
    histogram: list[dict[str, object]] = field(default_factory=list)
    bucket_seconds: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def histogram(index: EventIndex, case_id: int) -> tuple[list[dict[str, object]], int]:
    """Events per time bucket (about HISTOGRAM_BUCKETS of them), skipping epoch (no time).

    The first and last times come from the ends of the index's order (two reads of one
    row each, not a scan); the buckets are counted on whole seconds, which is cheaper than
    `toStartOfInterval` on the DateTime64 column and gives the same epoch-aligned starts.
    """
    where = "case_id = {c:UInt32} AND ts > toDateTime64(0, 6, 'UTC')"
    ends = [
        index.query_rows(
            f"SELECT toUnixTimestamp(ts) AS t FROM {DATABASE}.events WHERE {where} "
            f"ORDER BY ts {direction} LIMIT 1",
            {"c": case_id},
        )
        for direction in ("ASC", "DESC")
    ]
    if not ends[0] or not ends[1]:
        return [], 0
    span = int(ends[1][0]["t"]) - int(ends[0][0]["t"])
    seconds = max(1, span // HISTOGRAM_BUCKETS + 1)
    rows = index.query_rows(
        "SELECT toDateTime(b * {s:UInt32}, 'UTC') AS bucket, n FROM ("
        "SELECT intDiv(toUnixTimestamp(ts), {s:UInt32}) AS b, count() AS n "
        f"FROM {DATABASE}.events WHERE {where} GROUP BY b) ORDER BY bucket",
        {"c": case_id, "s": seconds},
    )
    return [{"start": str(r["bucket"]), "events": int(r["n"])} for r in rows], seconds


def build_dashboard(db: Database, index: EventIndex, case_id: int) -> Dashboard:
    status = collect_status(db, case_id=case_id, index=index, stale_after=0, max_failures=0)
    board = Dashboard(
        files_by_status=status.files_by_status,
        hidden_files=status.hidden_files,
        events_parsed=status.events_parsed,
        events_indexed=status.events_indexed or 0,
    )
    for item in summary(db, DetectionFilter(case_id)):
        level, count = item.level, item.hits
        key = level or "unknown"
        board.detections_by_level[key] = board.detections_by_level.get(key, 0) + count
    board.ioc_hits = sum(s.hits for s in hit_summary(db, HitFilter(case_id)))
    board.histogram, board.bucket_seconds = histogram(index, case_id)
    return board
