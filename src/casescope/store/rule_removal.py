"""Rules leaving the deployment, with their hits.

A detection references its rule, so a rule cannot go while its hits stay; and a hit of a
rule that no longer exists could not be explained (no title, level, logic). Rules leave in
two ways: a re-import of their set no longer holds them (SigmaHQ removes or renames rules
between snapshots), or their whole set is deleted. Either way their hits in every case go
with them, as a `rules run` drops the hits of rules no longer active, and the caller reports
how many, per case, in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from casescope.model.tables import Detection, Rule
from casescope.units import counted

#: Rule ids per statement (SQLite's bound-parameter limit is far above; the IN list stays small).
IDS_PER_STATEMENT = 500


@dataclass(frozen=True)
class RemovedRules:
    """What left with some rules: the rules, their hits, and the cases those hits were in."""

    rules: int = 0
    hits: int = 0
    cases: int = 0

    def describe(self, verb: str = "removed") -> str:
        rules, hits, cases = (
            counted(self.rules, "rule"),
            counted(self.hits, "hit"),
            counted(self.cases, "case"),
        )
        return f"{rules} {verb} with {hits} in {cases}"


def _chunks(rule_ids: Sequence[int]) -> list[list[int]]:
    return [
        list(rule_ids[start : start + IDS_PER_STATEMENT])
        for start in range(0, len(rule_ids), IDS_PER_STATEMENT)
    ]


def _hits_per_case(session: Session, chunk: list[int]) -> dict[int, int]:
    query = (
        select(Detection.case_id, func.count())
        .where(Detection.rule_id.in_(chunk))
        .group_by(Detection.case_id)
    )
    return {case_id: count for case_id, count in session.execute(query)}


def leaving_with(session: Session, rule_ids: Sequence[int]) -> RemovedRules:
    """What `remove_rules(session, rule_ids)` would remove, removing nothing."""
    hits, cases = 0, set()
    for chunk in _chunks(rule_ids):
        per_case = _hits_per_case(session, chunk)
        hits += sum(per_case.values())
        cases.update(per_case)
    return RemovedRules(len(rule_ids), hits, len(cases))


def remove_rules(session: Session, rule_ids: Sequence[int]) -> RemovedRules:
    """Delete the rules `rule_ids` and every detection of them, in `session`'s transaction."""
    removed = leaving_with(session, rule_ids)
    for chunk in _chunks(rule_ids):
        session.execute(delete(Detection).where(Detection.rule_id.in_(chunk)))
        session.execute(delete(Rule).where(Rule.id.in_(chunk)))
    return removed
