"""Detections of a case: filters, the rules that fired (with hits, hosts, first and last seen),
and every hit streamed.

Filters are of two kinds. Those about the rule (level, status, ATT&CK tactic or technique, its
text) are applied to the few hundred rules with hits in the case, in Python, from their
columns and tags (`detect.attack`) and YAML (`detect.rule_doc`); the hits are then selected
by rule. Those about the hit (host, one rule) are SQL on the detections table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import case, func, select, true
from sqlalchemy.orm import Session

from casescope.detect.attack import AttackTags, parse_tags, tactic, technique
from casescope.detect.levels import SigmaLevel, SigmaStatus, level_rank
from casescope.detect.rule_doc import describe, nth_of_path
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.tables import Detection, EvidenceFile, Rule

#: A tactic or technique filter for rules that name none.
NONE = "none"
#: Text of a rule filter, at most.
MAX_TEXT = 200


class Shown(StrEnum):
    """Which hits a listing holds: those shown, those an exclusion hides, or all."""

    VISIBLE = "visible"
    EXCLUDED = "excluded"
    ALL = "all"


class DetectionFilterError(CasescopeError):
    """A detection filter with a value that is not one (unknown level, status, tactic...)."""


def check_level(value: str | SigmaLevel) -> SigmaLevel:
    """A Sigma level, or a clear error (web: 400; CLI: one line)."""
    try:
        return SigmaLevel.parse(value)
    except CasescopeError as exc:
        raise DetectionFilterError(str(exc)) from None


def check_status(value: str | SigmaStatus) -> SigmaStatus:
    try:
        return SigmaStatus.parse(value)
    except CasescopeError as exc:
        raise DetectionFilterError(str(exc)) from None


def check_tactic(text: str) -> str:
    """A tactic's short name (`execution`) from a name or id (`TA0002`), or `none`."""
    if text.strip().lower() == NONE:
        return NONE
    found = tactic(text)
    if found is None:
        raise DetectionFilterError(f"unknown ATT&CK tactic {text!r} (e.g. execution, TA0002)")
    return found.short


def check_technique(text: str) -> str:
    """A technique id (`T1059`, `T1059.001`, in any case), or `none`."""
    if text.strip().lower() == NONE:
        return NONE
    found = technique(text)
    if found is None:
        raise DetectionFilterError(f"not an ATT&CK technique id: {text!r} (e.g. T1059.001)")
    return found


@dataclass(frozen=True)
class DetectionFilter:
    """Which detections of a case: every value is checked when the filter is made."""

    case_id: int
    min_level: SigmaLevel | None = None
    rule_uid: str | None = None
    levels: tuple[SigmaLevel, ...] = ()  # exactly these levels
    statuses: tuple[SigmaStatus, ...] = ()
    host: str | None = None
    tactic: str | None = None  # a short name, or NONE
    technique: str | None = None  # T1059 (with its sub-techniques), T1059.001, or NONE
    text: str = ""  # in the rule's title, id, description or tags (any case)
    rule_id: int | None = None  # one rule (its row id)
    source: str | None = None  # one rule set (`rules import --name`); None: every set
    shown: Shown = Shown.VISIBLE  # hits hidden by the case's exclusions are kept apart

    def __post_init__(self) -> None:
        checked = {
            "min_level": check_level(self.min_level) if self.min_level else None,
            "levels": tuple(dict.fromkeys(check_level(v) for v in self.levels)),
            "statuses": tuple(dict.fromkeys(check_status(v) for v in self.statuses)),
            "tactic": check_tactic(self.tactic) if self.tactic else None,
            "technique": check_technique(self.technique) if self.technique else None,
            "text": self.text.strip()[:MAX_TEXT],
            "host": self.host or None,
            "source": self.source or None,
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def about_rules(self) -> bool:
        """Whether it selects rules by what they are (not only by id, uid or host)."""
        return bool(
            self.min_level
            or self.levels
            or self.statuses
            or self.tactic
            or self.technique
            or self.text
            or self.source
        )

    def without_attack(self) -> DetectionFilter:
        """The same filter but for the ATT&CK tactic and technique (the matrix shows every
        cell, with the chosen one marked)."""
        return replace(self, tactic=None, technique=None)


@dataclass(frozen=True)
class RuleInfo:
    """A rule as the detection views show it."""

    id: int  # the rules row
    rule_uid: str
    title: str
    level: str
    status: str
    tags: tuple[str, ...]
    attack: AttackTags
    description: str
    source: str = ""  # the rule set (`rules import --name`)

    @property
    def level_rank(self) -> int:
        return level_rank(self.level)


def rule_info(row: Rule) -> RuleInfo:
    doc = describe(row.yaml or "", row.rule_uid, nth_of_path(row.path))
    return RuleInfo(
        id=row.id,
        rule_uid=row.rule_uid,
        title=row.title,
        level=(row.level or "").lower(),
        status=(row.status or "").lower(),
        tags=tuple(row.tags.split()),
        attack=parse_tags(row.tags),
        description=doc.description,
        source=row.source,
    )


def _text_matches(rule: RuleInfo, text: str) -> bool:
    needle = text.lower()
    haystack = (rule.title, rule.rule_uid, rule.description, " ".join(rule.tags))
    return any(needle in part.lower() for part in haystack)


def _attack_matches(rule: RuleInfo, filters: DetectionFilter) -> bool:
    tactics = {t.short for t in rule.attack.tactics}
    if filters.tactic == NONE and tactics:
        return False
    if filters.tactic not in (None, NONE) and filters.tactic not in tactics:
        return False
    if filters.technique == NONE:
        return not rule.attack.techniques
    return filters.technique is None or rule.attack.has_technique(filters.technique)


def rule_matches(rule: RuleInfo, filters: DetectionFilter) -> bool:
    """Whether a rule passes the filter's rule criteria (level, status, ATT&CK, text)."""
    if filters.min_level and rule.level_rank < filters.min_level.rank:
        return False
    if filters.levels and rule.level not in filters.levels:
        return False
    if filters.statuses and rule.status not in filters.statuses:
        return False
    if filters.text and not _text_matches(rule, filters.text):
        return False
    if filters.source and rule.source != filters.source:
        return False
    return _attack_matches(rule, filters)


def sql_clauses(filters: DetectionFilter, rules: Iterable[int] | None = None) -> list:
    """SQL conditions on the detections table: the case, host and rule id of `filters`, and
    the rules (row ids) `rules` when `filters` selects rules by what they are."""
    clauses = [Detection.case_id == filters.case_id]
    if filters.host is not None:
        clauses.append(Detection.computer == filters.host)
    if filters.rule_id is not None:
        clauses.append(Detection.rule_id == filters.rule_id)
    if rules is not None and (filters.about_rules or filters.rule_uid):
        clauses.append(Detection.rule_id.in_(list(rules)))
    if filters.shown is Shown.VISIBLE:
        clauses.append(Detection.excluded_by.is_(None))
    elif filters.shown is Shown.EXCLUDED:
        clauses.append(Detection.excluded_by.is_not(None))
    return clauses


def _case_rules(session: Session, filters: DetectionFilter) -> dict[int, RuleInfo]:
    """The rules with hits in the case (and this filter's host or rule), that pass it."""
    fired = select(Detection.rule_id).where(*sql_clauses(filters)).distinct()
    query = select(Rule).where(Rule.id.in_(fired))
    if filters.rule_uid:
        query = query.where(Rule.rule_uid == filters.rule_uid)
    rules = (rule_info(row) for row in session.scalars(query))
    return {r.id: r for r in rules if rule_matches(r, filters)}


def matching_rules(db: Database, filters: DetectionFilter) -> dict[int, RuleInfo]:
    """The rules (by row id) with hits in the case that pass `filters`."""
    with db.read() as session:
        return _case_rules(session, filters)


def hit_clauses(db: Database, filters: DetectionFilter) -> list:
    """Every SQL condition of `filters` on the detections table (rules resolved to ids)."""
    selects_rules = filters.about_rules or filters.rule_uid
    return sql_clauses(filters, matching_rules(db, filters) if selects_rules else None)


@dataclass
class RuleHits:
    """A rule that fired in a case: its hits, hosts and first and last time seen."""

    rule: RuleInfo
    hits: int = 0  # shown (not hidden by an exclusion)
    excluded: int = 0  # hidden by the case's exclusions (kept, restorable)
    #: Each host (computer; "" if unknown) with its hits of the listed kind, most first.
    hosts: list[tuple[str, int]] = field(default_factory=list)
    first_seen: datetime | None = None  # of the hits of the listed kind
    last_seen: datetime | None = None

    @property
    def listed(self) -> int:
        """Hits of the kind the filter lists (shown, excluded or all)."""
        return sum(n for _, n in self.hosts)

    def add(
        self, host: str, counts: tuple[int, int, int], first: datetime | None, last: datetime | None
    ) -> None:
        """A host's (shown, excluded, listed) hits and its first and last time listed."""
        shown, excluded, listed = counts
        self.hits += shown
        self.excluded += excluded
        if not listed:
            return
        self.hosts.append((host, listed))
        if first is not None and (self.first_seen is None or first < self.first_seen):
            self.first_seen = first
        if last is not None and (self.last_seen is None or last > self.last_seen):
            self.last_seen = last


class RuleSort(StrEnum):
    """Orders of the by-rule table (each ends with the rule's title)."""

    HITS = "hits"  # most first
    LEVEL = "level"  # highest first
    FIRST = "first"  # earliest first seen first
    LAST = "last"  # latest last seen first
    TITLE = "title"


_EPOCH = datetime(1970, 1, 1)


def _seconds(value: datetime | None, missing: float) -> float:
    """A time as seconds since the epoch (DB times are UTC, naive or not)."""
    if value is None:
        return missing
    return (value.replace(tzinfo=None) - _EPOCH).total_seconds()


_SORT_KEYS: dict[RuleSort, Callable[[RuleHits], tuple]] = {
    RuleSort.HITS: lambda r: (-r.listed, -r.rule.level_rank, r.rule.title),
    RuleSort.LEVEL: lambda r: (-r.rule.level_rank, -r.hits, r.rule.title),
    RuleSort.FIRST: lambda r: (_seconds(r.first_seen, math.inf), r.rule.title),
    RuleSort.LAST: lambda r: (-_seconds(r.last_seen, -math.inf), r.rule.title),
    RuleSort.TITLE: lambda r: (r.rule.title.lower(), r.rule.id),
}


def rule_hits(
    db: Database, filters: DetectionFilter, sort: RuleSort = RuleSort.HITS
) -> list[RuleHits]:
    """The rules that fired in the case and pass `filters`, with their shown hits and, apart,
    those the case's exclusions hide; `filters.shown` lists rules with shown hits (the
    default), with hidden ones, or all, and their hosts and times are those of that kind. A
    rule in two active rule sets is two rules: each hit belongs to one of them."""
    every = replace(filters, shown=Shown.ALL)
    visible = Detection.excluded_by.is_(None)
    wanted = {Shown.VISIBLE: visible, Shown.EXCLUDED: ~visible, Shown.ALL: true()}
    counted = wanted[filters.shown]
    with db.read() as session:
        rules = _case_rules(session, every)
        if not rules:
            return []
        rows = session.execute(
            select(
                Detection.rule_id,
                Detection.computer,
                func.sum(case((visible, 1), else_=0)),
                func.sum(case((visible, 0), else_=1)),
                func.sum(case((counted, 1), else_=0)),
                func.min(case((counted, Detection.ts))),
                func.max(case((counted, Detection.ts))),
            )
            .where(*sql_clauses(every), Detection.rule_id.in_(list(rules)))
            .group_by(Detection.rule_id, Detection.computer)
        ).all()
    found: dict[int, RuleHits] = {}
    for rule_id, host, hits, excluded, listed, first, last in rows:
        item = found.setdefault(rule_id, RuleHits(rules[rule_id]))
        item.add(host or "", (int(hits), int(excluded), int(listed)), first, last)
    for item in found.values():
        item.hosts.sort(key=lambda pair: (-pair[1], pair[0]))
    shown = [item for item in found.values() if item.listed]
    return sorted(shown, key=_SORT_KEYS[sort])


def case_hosts(db: Database, case_id: int) -> list[tuple[str, int]]:
    """Every computer with detections in the case, with its hits (most first)."""
    with db.read() as session:
        rows = session.execute(
            select(Detection.computer, func.count())
            .where(Detection.case_id == case_id, Detection.computer.is_not(None))
            .group_by(Detection.computer)
        ).all()
    return sorted(((h or "", n) for h, n in rows), key=lambda pair: (-pair[1], pair[0]))


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
            Detection.computer,
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
        .where(*hit_clauses(db, filters))
        .order_by(Detection.ts, Detection.file_id, Detection.seq)
    )
    with db.read() as session:
        for row in session.execute(query.execution_options(yield_per=chunk)):
            yield dict(row._mapping)


def detected_events(db: Database, filters: DetectionFilter) -> tuple[tuple[int, int], ...]:
    """The (file id, seq) of every event with a matching detection (for search filters)."""
    query = select(Detection.file_id, Detection.seq).where(*hit_clauses(db, filters)).distinct()
    with db.read() as session:
        return tuple((file_id, seq) for file_id, seq in session.execute(query))


def first_few(hosts: Sequence[tuple[str, int]], few: int = 3) -> tuple[list[str], int]:
    """The first `few` host names and how many more there are."""
    names = [host for host, _ in hosts]
    return names[:few], max(0, len(names) - few)


def parse_filter_values(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated or comma-separated filter values (`?levels=high,critical`), empties dropped."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())
