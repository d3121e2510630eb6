"""Case deletion's parts that the end-to-end tests cannot reach: which tables it covers
(every table naming a case or one of its files, tables added later included) and the
completion of a deletion cut short after its commit."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.tables import Base, Case, DeletedCase
from casescope.services.case_delete import case_rows, finish_deletions
from casescope.store.index import ChdbIndex


def _names_a_case_or_its_files(table) -> bool:  # type: ignore[no-untyped-def]
    referenced = {fk.column.table.name for fk in table.foreign_keys}
    columns = set(table.c.keys())
    return bool({"case_id", "file_id"} & columns or {"cases", "evidence_files"} & referenced)


def test_every_table_naming_a_case_or_its_files_is_covered() -> None:
    covered = {table.name for table in case_rows(7)}
    expected = {
        table.name
        for table in Base.metadata.sorted_tables
        if _names_a_case_or_its_files(table) and table.name != DeletedCase.__tablename__
    }
    assert expected - covered == set()
    assert {"cases", "evidence_files", "jobs", "load_pieces", "audit"} <= covered
    # never: shared or global tables
    assert not {"segments", "users", "rules", "case_deletions", "rule_sets"} & covered


def test_the_conditions_select_only_the_case(db: Database) -> None:
    with db.session() as session:
        session.add_all([Case(id=7, name="seven"), Case(id=8, name="eight")])
    with db.read() as session:
        cases = Case.__table__
        ids = session.scalars(select(cases.c.id).where(case_rows(7)[cases])).all()
    assert ids == [7]


def test_an_interrupted_deletion_is_finished_later(db: Database, settings: Settings) -> None:
    leftover = settings.evidence_dir / "9" / "ab" / ("ab" + "0" * 62)
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"evidence")
    segment = settings.segments_dir / "ab" / "segment.parquet"
    segment.parent.mkdir(parents=True)
    segment.write_bytes(b"parquet")
    paths = {"evidence": [str(leftover)], "segments": [str(segment)]}
    with db.session() as session:  # committed, then the process died: nothing removed yet
        session.add(DeletedCase(id=9, name="gone", deleted_by="test", leftovers=json.dumps(paths)))
    index = ChdbIndex(settings.index_dir)
    try:
        assert finish_deletions(db, index, settings) == 1
        assert finish_deletions(db, index, settings) == 0  # done once
    finally:
        index.close()
    assert not leftover.exists() and not segment.exists()
    assert not (settings.evidence_dir / "9").exists()
    with db.read() as session:
        assert session.get(DeletedCase, 9).cleaned
    assert Path(settings.evidence_dir).is_dir()
