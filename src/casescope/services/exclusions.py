"""Noise control per case: exclusions that hide Sigma hits without deleting rules or hits.

An exclusion is a rule switch (every hit of a rule in the case), a rule with field
conditions (`SubjectUserName=svc_backup`, `Computer=BUILD01`: only hits whose event holds
them), or a Sigma filter document (pySigma's `SigmaFilter`). Hidden hits keep their row
with `excluded_by` set: the detections summary counts them apart, and removing the
exclusion shows them again. Adding or removing one is audited and re-decides only the hits
of the rules it names (`store.exclusions.reapply`: detection rows, plus the segments' rows
of those hits for conditions); workers apply the case's exclusions to new hits as they
write them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from casescope.detect.exclusions import ANY, Exclusion, ExclusionError, ExclusionSet, parse_filter
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.enums import AuditAction, ExclusionKind
from casescope.model.tables import AuditRecord, Detection, Rule
from casescope.model.tables import Exclusion as ExclusionRow
from casescope.services.case_lifecycle import ensure_open
from casescope.store.exclusions import reapply

MAX_NOTE_CHARS = 2000
MAX_DOCUMENT_CHARS = 100_000


class ExclusionInputError(CasescopeError):
    """An exclusion request that cannot be stored (no such rule, bad condition...)."""


@dataclass(frozen=True)
class NewExclusion:
    """What the analyst asks to silence in one case."""

    rule_uid: str | None = None  # a Sigma rule id (rule exclusions)
    source: str | None = None  # only in this rule set
    conditions: Mapping[str, Sequence[str]] = field(default_factory=dict)  # field -> values
    document: str = ""  # a Sigma filter document instead of a rule
    note: str = ""


#: Also the web API's answer (web/api/exclusions.py): a field added here is added there.
@dataclass(frozen=True)
class ExclusionInfo:
    """An exclusion of a case, with how many hits it hides now."""

    id: int
    kind: ExclusionKind
    rule_uids: list[str]
    source: str | None
    conditions: dict[str, list[str]]
    document: str
    note: str
    created_by: str
    created_at: datetime
    hidden: int  # hits it hides now


def parse_condition(text: str) -> tuple[str, str]:
    """`SubjectUserName=svc_backup` or `Computer: BUILD01` -> (field, value)."""
    name, sep, value = text.partition("=")
    if not sep:
        name, sep, value = text.partition(":")
    if not sep or not name.strip() or not value.strip():
        raise ExclusionInputError(f"{text!r} is not FIELD=VALUE")
    return name.strip(), value.strip()


def conditions_of(pairs: Sequence[str]) -> dict[str, list[str]]:
    """`FIELD=VALUE` strings -> {field: values} (one field given twice: any of its values)."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, value = parse_condition(pair)
        out.setdefault(name, []).append(value)
    return out


def _check(db: Database, request: NewExclusion) -> tuple[ExclusionKind, list[str]]:
    """The exclusion's kind and rule ids; a clear error for anything that cannot work."""
    if len(request.note) > MAX_NOTE_CHARS:
        raise ExclusionInputError(f"the note is limited to {MAX_NOTE_CHARS:,} characters")
    if request.document:
        if request.rule_uid or request.conditions:
            raise ExclusionInputError("give a rule (with conditions) or a filter, not both")
        if len(request.document) > MAX_DOCUMENT_CHARS:
            raise ExclusionInputError("the filter document is too large")
        uids, _ = parse_filter(request.document)
        kind = ExclusionKind.FILTER
    elif request.rule_uid:
        uids, kind = [request.rule_uid.strip()], ExclusionKind.RULE
    else:
        raise ExclusionInputError("give a rule id (--rule) or a Sigma filter (--filter)")
    known = select(func.count()).select_from(Rule)
    if ANY not in uids:
        known = known.where(Rule.rule_uid.in_(uids))
    if request.source:
        known = known.where(Rule.source == request.source)
    with db.read() as session:
        if not session.scalar(known):
            where = f" in rule set {request.source!r}" if request.source else ""
            raise ExclusionInputError(f"no imported rule {', '.join(uids)}{where}")
    return kind, list(uids)


def add_exclusion(db: Database, case_id: int, request: NewExclusion, actor: str = "cli") -> int:
    """Store an exclusion (checked by compiling it) and hide the hits it covers; its id."""
    ensure_open(db, case_id)
    kind, uids = _check(db, request)
    conditions = {k: list(v) for k, v in request.conditions.items()}
    spec = Exclusion(0, tuple(uids), request.source, conditions, request.document)
    try:
        ExclusionSet.build([spec])  # compiles: a bad condition fails here, not in workers
    except ExclusionError as exc:
        raise ExclusionInputError(str(exc)) from None
    with db.session() as session:
        row = ExclusionRow(
            case_id=case_id,
            kind=kind,
            rule_uids=json.dumps(uids),
            source=request.source or None,
            conditions=json.dumps(conditions) if conditions else None,
            document=request.document,
            note=request.note,
            created_by=actor,
        )
        session.add(row)
        session.flush()
        new_id = row.id
        detail = f"{new_id}: {kind.value} {', '.join(uids)} {json.dumps(conditions)}"
        session.add(
            AuditRecord(
                actor=actor, action=AuditAction.EXCLUSION_ADD, case_id=case_id, detail=detail
            )
        )
    reapply(db, case_id, uids)
    return new_id


def remove_exclusion(db: Database, case_id: int, exclusion_id: int, actor: str = "cli") -> int:
    """Delete an exclusion and show its hits again (unless another one hides them); how
    many hits it hid."""
    ensure_open(db, case_id)
    with db.session() as session:
        row = session.get(ExclusionRow, exclusion_id)
        if row is None or row.case_id != case_id:
            raise ExclusionInputError(f"case has no exclusion {exclusion_id}")
        uids = json.loads(row.rule_uids)
        hidden = session.scalar(
            select(func.count()).where(
                Detection.case_id == case_id, Detection.excluded_by == exclusion_id
            )
        )
        session.delete(row)
        session.add(
            AuditRecord(
                actor=actor,
                action=AuditAction.EXCLUSION_REMOVE,
                case_id=case_id,
                detail=f"{exclusion_id}: {row.kind} {', '.join(uids)}",
            )
        )
    reapply(db, case_id, uids)
    return int(hidden or 0)


def list_exclusions(db: Database, case_id: int) -> list[ExclusionInfo]:
    """The case's exclusions, oldest first, with the hits each hides."""
    with db.read() as session:
        hidden = dict(
            session.execute(
                select(Detection.excluded_by, func.count())
                .where(Detection.case_id == case_id, Detection.excluded_by.is_not(None))
                .group_by(Detection.excluded_by)
            ).all()
        )
        rows = session.scalars(
            select(ExclusionRow).where(ExclusionRow.case_id == case_id).order_by(ExclusionRow.id)
        )
        return [
            ExclusionInfo(
                id=row.id,
                kind=ExclusionKind(row.kind),
                rule_uids=json.loads(row.rule_uids),
                source=row.source,
                conditions=json.loads(row.conditions) if row.conditions else {},
                document=row.document,
                note=row.note,
                created_by=row.created_by,
                created_at=row.created_at,
                hidden=int(hidden.get(row.id, 0)),
            )
            for row in rows
        ]


def apply_all(db: Database, case_id: int, actor: str = "cli") -> int:
    """Re-decide every hit of the case against its exclusions; how many are hidden. Needed
    only when an exclusion changed while one of the case's files was being evaluated."""
    hidden = reapply(db, case_id, [ANY])
    with db.session() as session:
        session.add(
            AuditRecord(
                actor=actor, action=AuditAction.EXCLUSION_APPLY, case_id=case_id, events=hidden
            )
        )
    return hidden
