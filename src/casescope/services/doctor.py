"""`casescope doctor`: prove every file is accounted for, and repair what can be repaired.

Invariants (the predecessor broke each of them):
- every file is terminal (completed/failed) or has exactly one active job (a paused job, in a
  paused operation, is waiting, not lost);
- no running job holds an expired lease;
- every file awaiting an index load has a segment on disk;
- every file's evidence is where its row says (and, with `verify_evidence`, still holds the
  bytes hashed at intake).

`verify_files` is the read-only proof of the first invariant; `casescope ingest` prints it
at the end of intake and `casescope doctor` after its repairs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import ColumnElement, case, delete, func, select
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.evidence.store import sha256_of
from casescope.model.db import Database
from casescope.model.enums import (
    ACTIVE_JOB_STATES,
    TERMINAL_FILE_STATES,
    FileStatus,
    IndexState,
    JobState,
    Operation,
)
from casescope.model.tables import EvidenceFile, Job, Segment, WorkerRecord
from casescope.store.loader import orphan_bundles, prune_bundles, prune_piece_dirs
from casescope.store.pieces import orphan_piece_dirs
from casescope.workqueue import queue


@dataclass
class Verification:
    """Every file in exactly one state: terminal, or in progress with exactly one job."""

    files: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0  # their job was cancelled before they had any outcome
    rejected: int = 0  # not evidence by their content, refused at intake
    in_progress: int = 0  # queued with a claimable or paused job, or running under a lease
    paused: int = 0  # of those in progress: waiting in a paused operation
    problems: list[tuple[int, str]] = field(default_factory=list)  # (file id, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "every file accounted for" if self.ok else f"{len(self.problems)} problems"
        return (
            f"verified {self.files:,} files: {self.completed:,} completed, "
            f"{self.failed:,} failed, "
            f"{f'{self.cancelled:,} cancelled, ' if self.cancelled else ''}"
            f"{f'{self.rejected:,} rejected, ' if self.rejected else ''}"
            f"{self.in_progress:,} queued or running"
            f"{f' ({self.paused:,} paused)' if self.paused else ''}; {verdict}"
        )


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _file_problem(status: FileStatus, queued: int, running: int) -> str | None:
    """What is wrong with a file and its active jobs (`queued` counts paused ones too)."""
    if status.is_terminal:
        return f"{status} but still has an active job" if queued + running else None
    if queued + running > 1:
        return f"{status} with {queued + running} active jobs"
    if status is FileStatus.QUEUED and queued != 1:
        return "queued without a claimable job" if not running else "queued but its job runs"
    if status is not FileStatus.QUEUED and running != 1:
        return f"{status} without a running job"
    return None


def verify_files(session: Session, case_id: int | None = None) -> Verification:
    """Check, in one read, that every file (of `case_id`, or all) is in exactly one state."""
    query = (
        select(
            EvidenceFile.id,
            EvidenceFile.status,
            _count(Job.state.in_((JobState.QUEUED, JobState.PAUSED))),
            _count(Job.state == JobState.RUNNING),
            _count(Job.state == JobState.PAUSED),
        )
        .outerjoin(Job, (Job.file_id == EvidenceFile.id) & Job.state.in_(ACTIVE_JOB_STATES))
        .group_by(EvidenceFile.id, EvidenceFile.status)
    )
    if case_id is not None:
        query = query.where(EvidenceFile.case_id == case_id)
    result = Verification()
    for file_id, status, queued, running, paused in session.execute(query):
        result.files += 1
        problem = _file_problem(FileStatus(status), int(queued), int(running))
        if problem:
            result.problems.append((file_id, problem))
        elif status == FileStatus.COMPLETED:
            result.completed += 1
        elif status == FileStatus.FAILED:
            result.failed += 1
        elif status == FileStatus.CANCELLED:
            result.cancelled += 1
        elif status == FileStatus.REJECTED:
            result.rejected += 1
        else:
            result.in_progress += 1
            result.paused += int(paused)
    return result


@dataclass
class DoctorReport:
    orphans_requeued: list[int] = field(default_factory=list)
    leases_expired: int = 0
    stale_workers_removed: int = 0
    #: Load bundles no pending file needs (deleted when repairing): disk only, never lost data.
    bundles_orphaned: int = 0
    #: Piece directories of attempts that died or of replaced segments (store/pieces.py),
    #: deleted when repairing: disk only.
    piece_dirs_orphaned: int = 0
    segments_missing: list[int] = field(default_factory=list)
    evidence_missing: list[tuple[int, str]] = field(default_factory=list)
    #: Copies re-hashed (`verify_evidence`), and those whose sha256 is no longer the one
    #: recorded at intake: (file id, path, sha256 now).
    evidence_hashed: int = 0
    evidence_altered: list[tuple[int, str, str]] = field(default_factory=list)
    verification: Verification = field(default_factory=Verification)

    @property
    def healthy(self) -> bool:
        problems = (
            self.orphans_requeued
            or self.segments_missing
            or self.evidence_missing
            or self.evidence_altered
        )
        return not problems and self.verification.ok


def _orphans(session) -> list[EvidenceFile]:  # type: ignore[no-untyped-def]
    active = select(Job.file_id).where(Job.state.in_(ACTIVE_JOB_STATES))
    return list(
        session.scalars(
            select(EvidenceFile).where(
                EvidenceFile.status.not_in(TERMINAL_FILE_STATES), EvidenceFile.id.not_in(active)
            )
        )
    )


def _missing_segments(session) -> list[EvidenceFile]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(EvidenceFile, Segment.path)
        .outerjoin(Segment, Segment.id == EvidenceFile.segment_id)
        .where(EvidenceFile.index_state == IndexState.PENDING)
    ).all()
    return [f for f, path in rows if path is None or not Path(path).exists()]


def _rehash(report: DoctorReport, evidence: list[tuple[int, str, str]]) -> None:
    """Hash each (file id, path, recorded sha256) copy again; note those that changed."""
    for file_id, path, recorded in evidence:
        found = sha256_of(Path(path))
        report.evidence_hashed += 1
        if found != recorded:
            report.evidence_altered.append((file_id, path, found))


def run_doctor(
    db: Database, settings: Settings, *, repair: bool, verify_evidence: bool = False
) -> DoctorReport:
    """Check the invariants, repairing what can be; `verify_evidence` also re-hashes every
    evidence copy (reads all of it, outside any transaction)."""
    report = DoctorReport()
    present: list[tuple[int, str, str]] = []
    with db.session() as session:
        report.leases_expired = queue.expire_leases(session, time.time()) if repair else 0
        for f in _orphans(session):
            report.orphans_requeued.append(f.id)
            if repair:
                queue.enqueue(session, f, Operation.FULL, max_attempts=settings.max_attempts)
        for f in _missing_segments(session):
            report.segments_missing.append(f.id)
            if repair:
                f.index_state = IndexState.NONE
                queue.enqueue(session, f, Operation.REINDEX, max_attempts=settings.max_attempts)
        for f in session.scalars(select(EvidenceFile).where(EvidenceFile.size_bytes > 0)):
            if not Path(f.stored_path).is_file():
                report.evidence_missing.append((f.id, f.stored_path))
            else:
                present.append((f.id, f.stored_path, f.sha256))
        if repair:
            stale = time.time() - settings.heartbeat_seconds * 6
            result = session.execute(delete(WorkerRecord).where(WorkerRecord.heartbeat_at < stale))
            report.stale_workers_removed = result.rowcount or 0
        session.flush()
        report.verification = verify_files(session)
    if verify_evidence:
        _rehash(report, present)
    if repair:
        report.bundles_orphaned = prune_bundles(db, settings)
        report.piece_dirs_orphaned = prune_piece_dirs(db, settings)
    else:
        report.bundles_orphaned = len(orphan_bundles(db, settings))
        report.piece_dirs_orphaned = len(orphan_piece_dirs(db, settings))
    return report
