"""Sigma correlation rules over a case's detections, once the case's files are done.

A correlation hit is stored like a detection (so `casescope detections` and search filters
show it): its rule is the correlation rule, its event is the last detection in the window,
and `fields` holds the group, the count, the window and the ids of the detections in it.
Each run replaces the case's correlation hits, so re-running never doubles them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from casescope.detect.active import ActiveRules
from casescope.detect.correlate import CorrelationHit, correlate
from casescope.model.db import Database
from casescope.model.tables import Detection, Exclusion
from casescope.store.exclusions import reapply

logger = logging.getLogger(__name__)


EventRef = tuple[int, int, int | None, datetime, str | None]  # file, seq, record, time, host

_EMPTY = {"event": pl.Int64, "ts": pl.Datetime("us", "UTC"), "rule_id": pl.String}


def _detections(
    session: Session, case_id: int, rules: dict[int, str]
) -> tuple[pl.DataFrame, dict[int, EventRef]]:
    """The case's detections of `rules` (rule row -> compiled rule id) as the frame
    `correlate` takes, and where each detection's event is."""
    query = (
        select(
            Detection.id,
            Detection.ts,
            Detection.rule_id,
            Detection.fields,
            Detection.file_id,
            Detection.seq,
            Detection.record_id,
            Detection.computer,
        )
        .where(Detection.case_id == case_id, Detection.rule_id.in_(rules))
        .where(Detection.ts.is_not(None), Detection.excluded_by.is_(None))
    )
    rows, refs = [], {}
    for det_id, ts, row, fields, file_id, seq, record_id, computer in session.execute(query):
        ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        uid = rules[row]
        rows.append({"event": det_id, "ts": ts, "rule_id": uid, **json.loads(fields or "{}")})
        refs[det_id] = (file_id, seq, record_id, ts, computer)
    if not rows:
        return pl.DataFrame(schema=_EMPTY), refs
    return pl.DataFrame(rows, infer_schema_length=None), refs


def _hit_row(
    case_id: int, rule_row: int, hit: CorrelationHit, refs: dict[int, EventRef]
) -> dict[str, object]:
    """A correlation hit as a detection row, placed on the last event of its window."""
    file_id, seq, record_id, ts, computer = refs[max(hit.events, key=lambda e: (refs[e][3], e))]
    summary = {
        "group": hit.group,
        "count": hit.value,
        "first": str(hit.first),
        "last": str(hit.last),
        "detections": sorted(hit.events),
    }
    return {
        "case_id": case_id,
        "file_id": file_id,
        "seq": seq,
        "record_id": record_id,
        "ts": ts,
        "computer": computer,
        "rule_id": rule_row,
        "fields": json.dumps(summary, default=str),
    }


def run_correlations(db: Database, active: ActiveRules, case_id: int) -> int:
    """Evaluate the active correlation rules over the case; returns the hits stored."""
    correlations = active.ruleset.correlations
    hits: list[CorrelationHit] = []
    refs: dict[int, EventRef] = {}
    if correlations:
        referenced = {
            active.row_ids[rule_id]: rule_id
            for c in correlations
            for rule_id in c.rules
            if rule_id in active.row_ids
        }
        with db.read() as session:
            frame, refs = _detections(session, case_id, referenced)
        hits = correlate(correlations, frame) if frame.height else []
    rows = [
        _hit_row(case_id, active.row_ids[hit.correlation_id], hit, refs)
        for hit in hits
        if hit.correlation_id in active.row_ids
    ]
    corr_rows = [active.row_ids[c.id] for c in correlations if c.id in active.row_ids]
    with db.session() as session:
        if corr_rows:
            stale = Detection.case_id == case_id, Detection.rule_id.in_(corr_rows)
            session.execute(delete(Detection).where(*stale))
        if rows:
            session.execute(insert(Detection), rows)
        excluded = session.scalar(
            select(func.count()).select_from(Exclusion).where(Exclusion.case_id == case_id)
        )
    if rows and excluded:  # the new hits of correlation rules the case silenced
        reapply(db, case_id, {c.id.rpartition(":")[2] for c in correlations})
    logger.info("case %d: %d correlation hits", case_id, len(rows))
    return len(rows)
