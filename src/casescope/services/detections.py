"""Detections of a case: filtered listing and a summary by rule and level."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import case, func, select

from casescope.detect.levels import SigmaLevel
from casescope.model.db import Database
from casescope.model.tables import Detection, EvidenceFile, Rule


class Shown(StrEnum):
    """Which hits a listing holds: those shown, those an exclusion hides, or all."""

    VISIBLE = "visible"
    EXCLUDED = "excluded"
    ALL = "all"


@dataclass(frozen=True)
class DetectionFilter:
    case_id: int
    min_level: SigmaLevel | None = None
    rule_uid: str | None = None
    source: str | None = None  # one rule set (`rules import --name`); None: every set
    shown: Shown = Shown.VISIBLE  # hits hidden by the case's exclusions are kept apart


@dataclass(frozen=True)
class RuleHits:
    """A rule's hits in a case: the rule belongs to one rule set (`source`)."""

    level: str
    rule_uid: str
    title: str
    hits: int  # shown
    source: str
    excluded: int = 0  # hidden by the case's exclusions (kept, restorable)


def _where(filters: DetectionFilter) -> list:
    clauses = [Detection.case_id == filters.case_id]
    if filters.min_level:
        clauses.append(Rule.level.in_([lvl.value for lvl in filters.min_level.and_above()]))
    if filters.rule_uid:
        clauses.append(Rule.rule_uid == filters.rule_uid)
    if filters.source:
        clauses.append(Rule.source == filters.source)
    if filters.shown is Shown.VISIBLE:
        clauses.append(Detection.excluded_by.is_(None))
    elif filters.shown is Shown.EXCLUDED:
        clauses.append(Detection.excluded_by.is_not(None))
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
            Detection.excluded_by,
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
    """Hits per rule (of one rule set, or of each), most hits first, each with the hits the
    case's exclusions hide; `filters.shown` keeps rules with shown hits (the default),
    with hidden ones, or all. The same rule in two active sets is two rules: each hit
    belongs to one of them, never to both."""
    every = replace(filters, shown=Shown.ALL)
    shown = func.sum(case((Detection.excluded_by.is_(None), 1), else_=0))
    hidden = func.count() - shown
    keep = {Shown.ALL: None, Shown.VISIBLE: shown > 0, Shown.EXCLUDED: hidden > 0}[filters.shown]
    query = (
        select(Rule.level, Rule.rule_uid, Rule.title, shown, Rule.source, hidden)
        .select_from(Detection)
        .join(Rule, Rule.id == Detection.rule_id)
        .where(*_where(every))
        .group_by(Rule.id)
        .order_by(shown.desc(), hidden.desc(), Rule.source, Rule.rule_uid)
    )
    if keep is not None:
        query = query.having(keep)
    with db.read() as session:
        rows = session.execute(query).all()
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
