"""The job queue is the `jobs` table (DESIGN decision 2).

A job row and its file's status change in the same transaction, so "queued but nothing will
run it" cannot happen. Workers claim under ``BEGIN IMMEDIATE`` (SQLite) or ``FOR UPDATE SKIP
LOCKED`` (PostgreSQL), hold a lease renewed by heartbeats, and an expired lease is re-claimed.
Every claim counts an attempt; past ``max_attempts`` the job and its file fail with the last
error kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from casescope.model.db import Database
from casescope.model.enums import ACTIVE_JOB_STATES, FileStatus, JobState, Operation
from casescope.model.tables import EvidenceFile, Job, utcnow

logger = logging.getLogger(__name__)


#: The status a file enters when a worker claims its job.
FIRST_STATUS = {
    Operation.FULL: FileStatus.ESTIMATING,
    Operation.REINDEX: FileStatus.ESTIMATING,
    Operation.SIGMA_ONLY: FileStatus.SIGMA,
    Operation.IOC_ONLY: FileStatus.IOC,
}


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    file_id: int
    operation: Operation
    attempts: int


def enqueue(
    session: Session,
    file: EvidenceFile,
    operation: Operation,
    *,
    max_attempts: int,
    priority: int = 100,
) -> Job | None:
    """Queue `operation` for `file` in the caller's transaction; None if one is active."""
    active = session.scalar(
        select(Job.id).where(Job.file_id == file.id, Job.state.in_(ACTIVE_JOB_STATES))
    )
    if active is not None:
        return None
    job = Job(file_id=file.id, operation=operation, max_attempts=max_attempts, priority=priority)
    session.add(job)
    file.status = FileStatus.QUEUED
    file.error = None
    session.flush()
    return job


def _fail_in_session(session: Session, job: Job, error: str) -> None:
    job.state = JobState.FAILED
    job.last_error = error
    job.lease_until = None
    job.finished_at = utcnow()
    session.execute(
        update(EvidenceFile)
        .where(EvidenceFile.id == job.file_id)
        .values(status=FileStatus.FAILED, error=error)
    )


def _requeue_in_session(session: Session, job: Job, error: str) -> None:
    job.state = JobState.QUEUED
    job.last_error = error
    job.worker_id = None
    job.lease_until = None
    session.execute(
        update(EvidenceFile)
        .where(EvidenceFile.id == job.file_id)
        .values(status=FileStatus.QUEUED, events_processed=0)
    )


def _retry_or_fail(session: Session, job: Job, error: str) -> JobState:
    if job.attempts >= job.max_attempts:
        _fail_in_session(session, job, f"{error} (gave up after {job.attempts} attempts)")
        return JobState.FAILED
    _requeue_in_session(session, job, error)
    return JobState.QUEUED


def expire_leases(session: Session, now: float) -> int:
    """Re-queue (or fail, past max attempts) running jobs whose lease has run out."""
    stale_ids = session.scalars(
        select(Job.id).where(Job.state == JobState.RUNNING, Job.lease_until < now)
    ).all()
    if not stale_ids:  # the common case: no ORM objects loaded on the claim path
        return 0
    stale = session.scalars(select(Job).where(Job.id.in_(stale_ids))).all()
    for job in stale:
        logger.warning(
            "job %d (file %d): lease expired, worker %s lost", job.id, job.file_id, job.worker_id
        )
        _retry_or_fail(session, job, f"worker {job.worker_id} stopped heartbeating")
    return len(stale)


def claim(db: Database, worker_id: str, lease_seconds: float) -> ClaimedJob | None:
    """Take the next job, or None. Expired leases are re-queued first."""
    now = time.time()
    with db.session() as session:
        expire_leases(session, now)
        row = session.execute(
            select(Job.id, Job.file_id, Job.operation, Job.attempts)
            .where(Job.state == JobState.QUEUED)
            .order_by(Job.priority, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        session.execute(
            update(Job)
            .where(Job.id == row.id)
            .values(
                state=JobState.RUNNING,
                worker_id=worker_id,
                lease_until=now + lease_seconds,
                attempts=row.attempts + 1,
                started_at=utcnow(),
            )
        )
        operation = Operation(row.operation)
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id == row.file_id)
            .values(status=FIRST_STATUS[operation], events_processed=0)
        )
        return ClaimedJob(row.id, row.file_id, operation, row.attempts + 1)


def _owned(session: Session, job_id: int, worker_id: str) -> Job | None:
    job = session.get(Job, job_id)
    if job is None or job.state != JobState.RUNNING or job.worker_id != worker_id:
        return None
    return job


def renew_lease(db: Database, job_id: int, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the job is no longer this worker's."""
    with db.session() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.state == JobState.RUNNING)
            .values(lease_until=time.time() + lease_seconds)
        )
        return bool(result.rowcount)


def finish(session: Session, job_id: int, worker_id: str) -> bool:
    """Mark the job done in the caller's transaction; False if the lease was lost."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.state == JobState.RUNNING)
        .values(state=JobState.DONE, lease_until=None, finished_at=utcnow())
    )
    return bool(result.rowcount)


def fail(db: Database, job_id: int, worker_id: str, error: str, *, permanent: bool) -> JobState:
    """Record a failed attempt: retry while attempts remain, else fail job and file."""
    with db.session() as session:
        job = _owned(session, job_id, worker_id)
        if job is None:
            return JobState.FAILED
        if permanent:
            _fail_in_session(session, job, error)
            return JobState.FAILED
        return _retry_or_fail(session, job, error)


def release_worker(db: Database, worker_id: str, reason: str, *, permanent: bool = False) -> int:
    """A worker died: its running jobs are retried (or failed) at once, not after the lease."""
    with db.session() as session:
        jobs = session.scalars(
            select(Job).where(Job.worker_id == worker_id, Job.state == JobState.RUNNING)
        ).all()
        for job in jobs:
            if permanent:
                _fail_in_session(session, job, reason)
            else:
                _retry_or_fail(session, job, reason)
        return len(jobs)


def queue_depth(session: Session) -> dict[JobState, int]:
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    return {JobState(state): count for state, count in rows}


def case_has_active_jobs(db: Database, case_id: int) -> bool:
    """Whether any file of the case is still queued or running."""
    query = (
        select(Job.id)
        .join(EvidenceFile, EvidenceFile.id == Job.file_id)
        .where(EvidenceFile.case_id == case_id, Job.state.in_(ACTIVE_JOB_STATES))
        .limit(1)
    )
    with db.read() as session:
        return session.scalar(query) is not None


def has_active_jobs(db: Database) -> bool:
    with db.read() as session:
        return (
            session.scalar(select(Job.id).where(Job.state.in_(ACTIVE_JOB_STATES)).limit(1))
            is not None
        )
