"""Detections of a case: filtered listing and a summary by rule and level."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from casescope.detect.levels import SigmaLevel
from casescope.model.db import Database
from casescope.model.tables import Detection, EvidenceFile, Rule


@dataclass(frozen=True)
class DetectionFilter:
    case_id: int
    min_level: SigmaLevel | None = None
    rule_uid: str | None = None
    source: str | None = None  # one rule set (`rules import --name`); None: every set


@dataclass(frozen=True)
class RuleHits:
    """A rule's hits in a case: the rule belongs to one rule set (`source`)."""

    level: str
    rule_uid: str
    title: str
    hits: int
    source: str


def _where(filters: DetectionFilter) -> list:
    clauses = [Detection.case_id == filters.case_id]
    if filters.min_level:
        clauses.append(Rule.level.in_([lvl.value for lvl in filters.min_level.and_above()]))
    if filters.rule_uid:
        clauses.append(Rule.rule_uid == filters.rule_uid)
    if filters.source:
        clauses.append(Rule.source == filters.source)
    return clauses


def iter_detections(
    db: Database, filters: DetectionFilter, chunk: int = 5000
) -> Iterator[dict[str, object]]:
    """Every matching detection with its rule and file, in time order (streamed)."""
    query = (
        select(
            Detection.ts,
            Detection.file_id,
            Detection.seq,
            Detection.record_id,
            Rule.rule_uid,
            Rule.source,
            Rule.title,
            Rule.level,
            Rule.tags,
            EvidenceFile.original_path,
        )
        .join(Rule, Rule.id == Detection.rule_id)
        .join(EvidenceFile, EvidenceFile.id == Detection.file_id)
        .where(*_where(filters))
        .order_by(Detection.ts, Detection.file_id, Detection.seq)
    )
    with db.read() as session:
        for row in session.execute(query.execution_options(yield_per=chunk)):
            yield dict(row._mapping)


def summary(db: Database, filters: DetectionFilter) -> list[RuleHits]:
    """Hits per rule (of one rule set, or of each), most hits first. The same rule in two
    active sets is two rules: each hit belongs to one of them, never to both."""
    with db.read() as session:
        rows = session.execute(
            select(Rule.level, Rule.rule_uid, Rule.title, func.count(), Rule.source)
            .select_from(Detection)
            .join(Rule, Rule.id == Detection.rule_id)
            .where(*_where(filters))
            .group_by(Rule.id)
            .order_by(func.count().desc(), Rule.source, Rule.rule_uid)
        ).all()
    return [RuleHits(*row) for row in rows]


def detected_events(db: Database, filters: DetectionFilter) -> tuple[tuple[int, int], ...]:
    """The (file id, seq) of every event with a matching detection (for search filters)."""
    query = (
        select(Detection.file_id, Detection.seq)
        .join(Rule, Rule.id == Detection.rule_id)
        .where(*_where(filters))
        .distinct()
    )
    with db.read() as session:
        return tuple((file_id, seq) for file_id, seq in session.execute(query))
