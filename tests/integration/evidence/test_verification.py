"""The end-of-intake verification finds every file that is not in exactly one state."""

from __future__ import annotations

from sqlalchemy import delete, update

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState
from casescope.model.tables import EvidenceFile, Job
from casescope.services.doctor import run_doctor, verify_files
from casescope.workqueue import queue
from tests.integration.conftest import add_files


def _set_status(db: Database, file_id: int, status: FileStatus) -> None:
    with db.session() as session:
        session.execute(
            update(EvidenceFile).where(EvidenceFile.id == file_id).values(status=status)
        )


def test_healthy_queue_verifies(db: Database) -> None:
    ids = add_files(db, 4)
    queue.claim(db, "w", 30)  # one running, three queued
    _set_status(db, ids[3], FileStatus.FAILED)
    with db.session() as session:
        session.execute(delete(Job).where(Job.file_id == ids[3]))
        result = verify_files(session)
    assert result.ok and (result.files, result.in_progress, result.failed) == (4, 3, 1)


def test_each_broken_state_is_reported(db: Database, settings: Settings) -> None:
    ids = add_files(db, 4, stored_dir=settings.evidence_dir)
    with db.session() as session:  # queued, but the job is gone
        session.execute(delete(Job).where(Job.file_id == ids[0]))
    _set_status(db, ids[1], FileStatus.COMPLETED)  # completed, job still queued
    _set_status(db, ids[2], FileStatus.SIGMA)  # "processing", but nobody runs it
    with db.session() as session:
        result = verify_files(session)
    assert dict(result.problems) == {
        ids[0]: "queued without a claimable job",
        ids[1]: "completed but still has an active job",
        ids[2]: "sigma without a running job",
    }
    assert result.in_progress == 1 and "3 problems" in result.summary()
    with db.session() as session:  # a case filter sees only that case
        assert verify_files(session, case_id=999).files == 0

    report = run_doctor(db, settings, repair=True)
    assert report.orphans_requeued == [ids[0]]
    assert not report.verification.ok  # doctor cannot guess the truth of the other two


def test_doctor_repairs_orphans_and_verifies(db: Database, settings: Settings) -> None:
    ids = add_files(db, 3, stored_dir=settings.evidence_dir)
    with db.session() as session:
        session.execute(update(Job).where(Job.file_id == ids[0]).values(state=JobState.DONE))
    assert not run_doctor(db, settings, repair=False).verification.ok
    assert run_doctor(db, settings, repair=True).verification.ok
