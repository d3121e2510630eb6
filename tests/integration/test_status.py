"""`collect_status` over a run's files only: `casescope ingest --follow` reports the files of
its own run (a FileSet, an id range of one case), not every file of the case."""

from __future__ import annotations

from sqlalchemy import update

from casescope.model.db import Database
from casescope.model.tables import EvidenceFile
from casescope.services.progress import FileSet
from casescope.services.status import collect_status
from tests.integration.conftest import add_files


def test_status_of_a_run_counts_only_its_files(db: Database) -> None:
    ids = add_files(db, 5)
    with db.session() as session:
        session.execute(update(EvidenceFile).values(warnings="odd record", event_count=10))
        case_id = session.get(EvidenceFile, ids[0]).case_id
    run = FileSet(case_id, ids[1], ids[3])
    report = collect_status(db, case_id=case_id, index=None, stale_after=0, files=run)
    assert sum(report.files_by_status.values()) == 3
    assert report.events_parsed == 30
    assert report.files_with_warnings == 3
    whole = collect_status(db, case_id=case_id, index=None, stale_after=0)
    assert sum(whole.files_by_status.values()) == 5
