"""Rules removed while a worker holds hits of them (their set deleted, or re-imported without
them): the hits of the removed rules are dropped at persist, the others are written, and the
file is not failed by a detection that references no rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
from sqlalchemy import select

from casescope.detect.active import ActiveRules
from casescope.detect.engine import compile_rules
from casescope.detect.load import RuleLoad
from casescope.jobs.analyzers import DETECTION_ROWS, SigmaAnalyzer
from casescope.model.db import Database
from casescope.model.tables import Detection, EvidenceFile, Rule
from casescope.store.rule_removal import remove_rules
from tests.integration.conftest import add_files


def _rules(db: Database, *paths: str) -> list[int]:
    with db.session() as session:
        rows = [Rule(rule_uid=p, source="set", path=p, sha256="") for p in paths]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _holding(rule_ids: list[int]) -> SigmaAnalyzer:
    """An analyzer holding one hit of each rule in `rule_ids`, on events 0, 1, ..."""
    analyzer = SigmaAnalyzer(ActiveRules("set", compile_rules(RuleLoad(), {}), {}))
    n = len(rule_ids)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    columns = [
        pa.array(range(n), pa.uint64()),
        pa.array(rule_ids, pa.int64()),
        pa.array(range(100, 100 + n), DETECTION_ROWS.field("record_id").type),
        pa.array([when] * n, DETECTION_ROWS.field("ts").type),
        pa.array(["HOST"] * n),
        pa.array([None] * n, pa.string()),
        pa.array([None] * n, pa.int64()),
    ]
    analyzer._rows.add(columns)
    return analyzer


def test_hits_of_rules_removed_meanwhile_are_dropped_at_persist(db: Database) -> None:
    (file_id,) = add_files(db, 1, queued=False)
    kept, removed, also_removed = _rules(db, "kept.yml", "gone.yml", "gone-too.yml")
    analyzer = _holding([kept, removed, kept, also_removed])
    with db.session() as session:
        assert remove_rules(session, [removed, also_removed]).rules == 2
    with db.session() as session:
        case_id = session.scalar(select(EvidenceFile.case_id).where(EvidenceFile.id == file_id))
        written = SigmaAnalyzer.persist_many(session, [(analyzer, file_id, case_id)])
    assert written == [2]
    with db.read() as session:
        rows = session.execute(select(Detection.seq, Detection.rule_id).order_by(Detection.seq))
        assert [tuple(r) for r in rows] == [(0, kept), (2, kept)]


def test_removing_rules_counts_their_hits_per_case_and_keeps_the_others(db: Database) -> None:
    first = add_files(db, 1, queued=False, case_name="first")[0]
    second = add_files(db, 1, queued=False, case_name="second")[0]
    kept, removed = _rules(db, "kept.yml", "gone.yml")
    for file_id in (first, second):
        with db.session() as session:
            case_id = session.scalar(select(EvidenceFile.case_id).where(EvidenceFile.id == file_id))
            SigmaAnalyzer.persist_many(
                session, [(_holding([kept, removed, removed]), file_id, case_id)]
            )
    with db.session() as session:
        gone = remove_rules(session, [removed])
    assert (gone.rules, gone.hits, gone.cases) == (1, 4, 2)
    assert gone.describe() == "1 rule removed with 4 hits in 2 cases"
    with db.read() as session:
        assert set(session.scalars(select(Detection.rule_id))) == {kept}
        assert set(session.scalars(select(Rule.id))) == {kept}
