"""One rule as its drill-down page shows it: what it is, its logic, its hits in a case."""

from __future__ import annotations

from dataclasses import dataclass

from casescope.detect.rule_doc import RuleDoc, describe, nth_of_path
from casescope.model.db import Database
from casescope.model.tables import Rule
from casescope.services.detections import DetectionFilter, RuleHits, rule_hits, rule_info


@dataclass(frozen=True)
class RuleDetails:
    hits: RuleHits  # its rule, and its hits in the case (0 if it never fired there)
    doc: RuleDoc
    source: str
    path: str
    enabled: bool


def rule_details(db: Database, case_id: int, rule_id: int) -> RuleDetails | None:
    """The rule with row id `rule_id` and its hits in the case; None if there is no such rule."""
    with db.read() as session:
        row = session.get(Rule, rule_id)
        if row is None:
            return None
        info = rule_info(row)
        doc = describe(row.yaml or "", row.rule_uid, nth_of_path(row.path))
        source, path, enabled = row.source, row.path, row.enabled
    found = rule_hits(db, DetectionFilter(case_id, rule_id=rule_id))
    return RuleDetails(found[0] if found else RuleHits(info), doc, source, path, enabled)
