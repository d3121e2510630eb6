"""`doctor` finds and repairs the predecessor's broken states."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState, JobState, Operation
from casescope.model.tables import EvidenceFile, Job, Segment
from casescope.services.doctor import run_doctor
from casescope.workqueue import queue
from tests.integration.conftest import BOTH_DATABASES, add_files

pytestmark = BOTH_DATABASES  # the queue runs on either


def test_queued_file_without_a_job_is_requeued(db: Database, settings: Settings) -> None:
    ids = add_files(db, 3, stored_dir=settings.evidence_dir)
    with db.session() as session:  # "1,491 files Queued while the broker held 0 tasks"
        session.execute(delete(Job).where(Job.file_id == ids[1]))
    check = run_doctor(db, settings, repair=False)
    assert check.orphans_requeued == [ids[1]] and not check.healthy
    run_doctor(db, settings, repair=True)
    assert run_doctor(db, settings, repair=False).orphans_requeued == []
    claimed = {queue.claim(db, "w", 30).file_id for _ in range(3)}
    assert claimed == set(ids)


def test_expired_lease_and_missing_segment_and_evidence(db: Database, settings: Settings) -> None:
    ids = add_files(db, 2)
    queue.claim(db, "dead-worker", lease_seconds=-1)  # already expired
    with db.session() as session:
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id == ids[1])
            .values(status=FileStatus.COMPLETED, index_state=IndexState.PENDING)
        )
        session.execute(update(Job).where(Job.file_id == ids[1]).values(state=JobState.DONE))
    report = run_doctor(db, settings, repair=True)
    assert report.leases_expired == 1
    assert report.segments_missing == [ids[1]]
    assert {i for i, _ in report.evidence_missing} == set(ids)
    with db.session() as session:
        states = dict(
            session.execute(
                select(Job.file_id, Job.state).where(Job.state == JobState.QUEUED)
            ).all()
        )
    assert states == {ids[0]: JobState.QUEUED, ids[1]: JobState.QUEUED}


def test_unneeded_load_bundles_are_reported_and_deleted_on_repair(
    db: Database, settings: Settings
) -> None:
    """A worker that died between writing its group's bundle and committing leaves a bundle
    no file names; a bundle a pending file names is kept."""
    ids = add_files(db, 1)
    settings.bundles_dir.mkdir(parents=True, exist_ok=True)
    stray = settings.bundles_dir / "w1-7.parquet"
    needed = settings.bundles_dir / "w2-9.parquet"
    for path in (stray, needed):
        path.write_bytes(b"PAR1")
    with db.session() as session:
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id == ids[0])
            .values(index_state=IndexState.PENDING, load_bundle=str(needed))
        )
    checked = run_doctor(db, settings, repair=False)
    assert checked.bundles_orphaned == 1 and stray.exists() and needed.exists()
    # repairing also re-queues the file (it has no segment), so its bundle goes too
    repaired = run_doctor(db, settings, repair=True)
    assert repaired.segments_missing == ids and repaired.bundles_orphaned == 2
    assert not stray.exists() and not needed.exists()


def test_piece_folders_of_dead_attempts_are_reported_and_deleted_on_repair(
    db: Database, settings: Settings
) -> None:
    """A large file's pieces are written in a folder per job attempt (store/pieces.py): the
    folder of an attempt that died goes; the one its segment names, or a running attempt
    writes, stays."""
    ids = add_files(db, 1)
    base = settings.segments_dir / "ab"
    dead, kept, running = (base / f"{'ab' * 32}-p2.j{job}a1" for job in (1, 2, 3))
    for folder in (dead, kept, running):
        folder.mkdir(parents=True)
        (folder / f"{folder.name}.00000.parquet").write_bytes(b"PAR1")
    with db.session() as session:
        session.execute(delete(Job))
        session.add(Segment(sha256="ab" * 32, parser_version=2, path=str(kept)))
        session.add(
            Job(id=3, file_id=ids[0], operation=Operation.FULL, state=JobState.RUNNING, attempts=1)
        )
    assert run_doctor(db, settings, repair=False).piece_dirs_orphaned == 1
    assert run_doctor(db, settings, repair=True).piece_dirs_orphaned == 1
    assert not dead.exists() and kept.exists() and running.exists()
