"""Why an event matters, for a page of results: its detections and IOC hits, fetched for the
whole page at once (one query for detections, one for IOC hits: never one per row)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from casescope.detect.levels import level_rank
from casescope.model.db import Database
from casescope.model.tables import Detection, IocHit, Rule
from casescope.model.tables import Ioc as IocRow

#: An ATT&CK technique tag of a Sigma rule (`attack.t1003.001`); tactic tags have no number.
_TECHNIQUE = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)", re.IGNORECASE)

EventKey = tuple[int, int]  # (file id, seq)


def techniques(tags: str) -> tuple[str, ...]:
    """The ATT&CK technique ids among a rule's space-separated tags (`T1003.001`), in order."""
    found = (m.group(1).upper() for t in tags.split() if (m := _TECHNIQUE.fullmatch(t)))
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class RuleBadge:
    rule_uid: str
    title: str
    level: str
    techniques: tuple[str, ...]


@dataclass(frozen=True)
class IocBadge:
    ioc_id: int
    type: str
    value: str
    fields: tuple[str, ...]


@dataclass
class Badges:
    detections: list[RuleBadge] = field(default_factory=list)
    iocs: list[IocBadge] = field(default_factory=list)


def _narrowing(keys: Sequence[EventKey], file_col: object, seq_col: object) -> list:
    """WHERE clauses that cover the page's events (exact pairs are kept in Python)."""
    return [
        file_col.in_(sorted({f for f, _ in keys})),  # type: ignore[attr-defined]
        seq_col.in_(sorted({s for _, s in keys})),  # type: ignore[attr-defined]
    ]


def _detections(db: Database, case_id: int, keys: Sequence[EventKey]) -> dict[EventKey, list]:
    query = (
        select(Detection.file_id, Detection.seq, Rule.rule_uid, Rule.title, Rule.level, Rule.tags)
        .join(Rule, Rule.id == Detection.rule_id)
        .where(Detection.case_id == case_id, *_narrowing(keys, Detection.file_id, Detection.seq))
        .order_by(Detection.file_id, Detection.seq, Rule.id)
    )
    wanted, found = set(keys), {}
    with db.read() as session:
        for file_id, seq, uid, title, level, tags in session.execute(query):
            if (file_id, seq) in wanted:
                badges = found.setdefault((file_id, seq), {})
                badges.setdefault(uid, RuleBadge(uid, title, level, techniques(tags or "")))
    return {key: sorted(badges.values(), key=_severity) for key, badges in found.items()}


def _severity(badge: RuleBadge) -> tuple[int, str]:
    """Most severe first (unknown levels last), then by title."""
    rank = level_rank(badge.level)
    return (-rank, badge.title)


def _ioc_hits(db: Database, case_id: int, keys: Sequence[EventKey]) -> dict[EventKey, list]:
    query = (
        select(IocHit.file_id, IocHit.seq, IocRow.id, IocRow.type, IocRow.value, IocHit.field)
        .join(IocRow, IocRow.id == IocHit.ioc_id)
        .where(IocHit.case_id == case_id, *_narrowing(keys, IocHit.file_id, IocHit.seq))
        .order_by(IocHit.file_id, IocHit.seq, IocRow.id, IocHit.field)
    )
    wanted, found = set(keys), {}
    with db.read() as session:
        for file_id, seq, ioc_id, kind, value, name in session.execute(query):
            if (file_id, seq) in wanted:
                hits = found.setdefault((file_id, seq), {})
                hits.setdefault(ioc_id, (kind, value, []))[2].append(name)
    return {
        key: [IocBadge(i, k, v, tuple(dict.fromkeys(n))) for i, (k, v, n) in hits.items()]
        for key, hits in found.items()
    }


def badges_of(db: Database, case_id: int, keys: Sequence[EventKey]) -> dict[EventKey, Badges]:
    """The detections and IOC hits of each of `keys` (events without any are left out)."""
    if not keys:
        return {}
    out: dict[EventKey, Badges] = {}
    for key, rules in _detections(db, case_id, keys).items():
        out.setdefault(key, Badges()).detections = rules
    for key, iocs in _ioc_hits(db, case_id, keys).items():
        out.setdefault(key, Badges()).iocs = iocs
    return out
