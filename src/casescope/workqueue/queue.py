"""The job queue is the `jobs` table (docs/decisions.md, "The job table is the queue").

A job row and its file's status change in the same transaction, so "queued but nothing will
run it" cannot happen. Workers claim under ``BEGIN IMMEDIATE`` (SQLite) or ``FOR UPDATE SKIP
LOCKED`` (PostgreSQL), hold a lease renewed by heartbeats, and an expired lease is re-claimed.
Every claim counts an attempt; past ``max_attempts`` the job and its file fail with the last
error kept. A worker that dies holding a group of small files does not use up its files'
attempts: they are queued again in groups a quarter the size, down to one file, and only the
attempts a file made alone count (a killed group need not hold a guilty file: the kernel's
OOM killer picks the largest worker, whatever it reads).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from casescope.model.db import Database
from casescope.model.enums import (
    ACTIVE_JOB_STATES,
    FileStatus,
    JobState,
    Operation,
)
from casescope.model.tables import EvidenceFile, Job, utcnow
from casescope.workqueue import slices

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
    counted = job.attempts - job.group_deaths
    if counted >= job.max_attempts:
        _fail_in_session(session, job, f"{error} (gave up after {counted} attempts)")
        return JobState.FAILED
    _requeue_in_session(session, job, error)
    return JobState.QUEUED


#: A group whose worker died is claimed again in groups this many times smaller.
GROUP_SHRINK = 4


def _release_claim(
    session: Session, jobs: Sequence[Job], reason: str, blame_job_id: int | None = None
) -> None:
    """A worker died holding `jobs` (one claim: a file alone, or a group of small files).

    The file it was killed for (`blame_job_id`) fails; a file alone is retried while its
    attempts last; the files of a group are queued again in smaller groups without counting
    the attempt, so that a file fails only on attempts it made alone.
    """
    size = len(jobs)
    for job in jobs:
        if job.id == blame_job_id:
            _fail_in_session(session, job, reason)
        elif size > 1:
            job.group_deaths += 1
            job.group_limit = max(1, size // GROUP_SHRINK)
            _requeue_in_session(session, job, f"{reason} (in a group of {size} files)")
        else:
            _retry_or_fail(session, job, f"{reason}, while processing this file alone")


def _by_worker(jobs: Sequence[Job]) -> dict[str | None, list[Job]]:
    claims: dict[str | None, list[Job]] = {}
    for job in jobs:
        claims.setdefault(job.worker_id, []).append(job)
    return claims


def _free_stale_jobs(session: Session, stale_ids: Sequence[int]) -> list[Job]:
    """The stale jobs whose job and file rows no other transaction holds, locked for this one.

    A process stopped inside a transaction (SIGSTOP, a frozen VM) keeps the rows it locked
    until PostgreSQL ends its idle transaction (`idle_transaction_seconds` in model/db.py);
    a claimer waiting on them would stop heartbeating its own jobs meanwhile, so their
    expiry is left to a later round instead (SQLite has one writer: nothing is skipped)."""
    jobs = session.scalars(
        select(Job)
        .where(Job.id.in_(stale_ids), Job.state == JobState.RUNNING)
        .with_for_update(skip_locked=True)
    ).all()
    if not jobs:
        return []
    free_files = set(
        session.scalars(
            select(EvidenceFile.id)
            .where(EvidenceFile.id.in_({job.file_id for job in jobs}))
            .with_for_update(skip_locked=True)
        )
    )
    skipped = [job.id for job in jobs if job.file_id not in free_files]
    if skipped:
        logger.info("lease expiry of %d job(s) waits: their rows are locked", len(skipped))
    return [job for job in jobs if job.file_id in free_files]


def expire_leases(session: Session, now: float) -> int:
    """Re-queue (or fail, past max attempts) running jobs whose lease has run out."""
    stale_ids = session.scalars(
        select(Job.id).where(Job.state == JobState.RUNNING, Job.lease_until < now)
    ).all()
    if not stale_ids:  # the common case: no ORM objects loaded on the claim path
        return 0
    stale = _free_stale_jobs(session, stale_ids)
    for worker_id, jobs in _by_worker(stale).items():
        logger.warning("lease expired: worker %s lost %d job(s)", worker_id, len(jobs))
        _release_claim(session, jobs, f"worker {worker_id} stopped heartbeating")
    return len(stale)


_JOBS = Job.__table__
_FILES = EvidenceFile.__table__

# The claim and completion statements run once per file: built once here (Core, not ORM),
# so SQLAlchemy compiles each a single time (see docs/decisions.md "Per-file overhead").
_STALE_JOBS = select(_JOBS.c.id).where(
    _JOBS.c.state == JobState.RUNNING, _JOBS.c.lease_until < bindparam("now")
)
_TAKE_JOB = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"))
    .values(
        state=JobState.RUNNING,
        worker_id=bindparam("owner"),
        lease_until=bindparam("lease"),
        attempts=bindparam("attempt"),
        started_at=bindparam("started"),
    )
)
_START_FILE = (
    update(_FILES)
    .where(_FILES.c.id == bindparam("file_id"))
    .values(status=bindparam("first_status"), events_processed=0)
)
_OWNED_RUNNING = (
    _JOBS.c.id == bindparam("job_id"),
    _JOBS.c.worker_id == bindparam("owner"),
    _JOBS.c.state == JobState.RUNNING,
)
_RENEW = update(_JOBS).where(*_OWNED_RUNNING).values(lease_until=bindparam("lease"))
_FINISH = (
    update(_JOBS)
    .where(*_OWNED_RUNNING)
    .values(state=JobState.DONE, lease_until=None, finished_at=bindparam("finished"))
)


def claim(db: Database, worker_id: str, lease_seconds: float) -> ClaimedJob | None:
    """Take the next job, or None. Expired leases are re-queued first."""
    with db.session() as session:
        return claim_in(session, worker_id, lease_seconds)


def claim_in(session: Session, worker_id: str, lease_seconds: float) -> ClaimedJob | None:
    """`claim` in the caller's write transaction: a group of one."""
    claimed = claim_group_in(session, worker_id, lease_seconds, max_files=1, max_bytes=0)
    return claimed[0] if claimed else None


_NEXT_JOBS = (
    select(
        _JOBS.c.id,
        _JOBS.c.file_id,
        _JOBS.c.operation,
        _JOBS.c.attempts,
        _JOBS.c.group_limit,
        _FILES.c.size_bytes,
    )
    .join(_FILES, _FILES.c.id == _JOBS.c.file_id)
    .where(_JOBS.c.state == JobState.QUEUED)
    .order_by(_JOBS.c.priority, _JOBS.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=_JOBS)
)


def claim_group(
    db: Database, worker_id: str, lease_seconds: float, max_files: int, max_bytes: int
) -> list[ClaimedJob]:
    """`claim_group_in` in its own transaction."""
    with db.session() as session:
        return claim_group_in(session, worker_id, lease_seconds, max_files, max_bytes)


def claim_group_in(
    session: Session, worker_id: str, lease_seconds: float, max_files: int, max_bytes: int
) -> list[ClaimedJob]:
    """Take the next job and, when its file is small, the small files queued right after it
    with the same operation: at most `max_files` files of at most `max_bytes` together.

    Each job is claimed on its own terms (its own lease and attempt count); the
    worker owns every file of the group from claim to completion. A file larger than
    `max_bytes` is claimed alone, and a file whose earlier group died (`group_limit`) only
    in a group of at most its limit.
    """
    now = time.time()
    if session.execute(_STALE_JOBS, {"now": now}).first() is not None:
        expire_leases(session, now)
    rows = session.execute(_NEXT_JOBS, {"limit": max(1, max_files)}).all()
    taken, total, limit = [], 0, max(1, max_files)
    for row in rows:
        size = row.size_bytes or 0
        limit = min(limit, row.group_limit or limit)
        if taken and (
            row.operation != taken[0].operation or total + size > max_bytes or len(taken) >= limit
        ):
            break
        taken.append(row)
        total += size
        if total > max_bytes:  # a large first file: alone
            break
    claimed = []
    for row in taken:
        attempts = row.attempts + 1
        params = {
            "job_id": row.id,
            "owner": worker_id,
            "lease": now + lease_seconds,
            "attempt": attempts,
            "started": utcnow(),
        }
        session.execute(_TAKE_JOB, params)
        operation = Operation(row.operation)
        first = {"file_id": row.file_id, "first_status": FIRST_STATUS[operation]}
        session.execute(_START_FILE, first)
        claimed.append(ClaimedJob(row.id, row.file_id, operation, attempts))
    return claimed


def _owned(session: Session, job_id: int, worker_id: str) -> Job | None:
    job = session.get(Job, job_id)
    if job is None or job.state != JobState.RUNNING or job.worker_id != worker_id:
        return None
    return job


def renew_lease(db: Database, job_id: int, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the job is no longer this worker's."""
    with db.session() as session:
        params = {
            "job_id": job_id,
            "owner": worker_id,
            "lease": time.time() + lease_seconds,
        }
        return bool(session.execute(_RENEW, params).rowcount)


_RENEW_MANY = (
    update(_JOBS)
    .where(
        _JOBS.c.id.in_(bindparam("job_ids", expanding=True)),
        _JOBS.c.worker_id == bindparam("owner"),
        _JOBS.c.state == JobState.RUNNING,
    )
    .values(lease_until=bindparam("lease"))
)


def renew_leases(db: Database, job_ids: Sequence[int], worker_id: str, lease_seconds: float) -> int:
    """Extend the leases of a worker's jobs in one statement; how many are still its own."""
    if not job_ids:
        return 0
    params = {"job_ids": list(job_ids), "owner": worker_id, "lease": time.time() + lease_seconds}
    with db.session() as session:
        return session.execute(_RENEW_MANY, params).rowcount


def finish(session: Session, job_id: int, worker_id: str) -> bool:
    """Mark the job done in the caller's transaction; False if the lease was lost."""
    params = {"job_id": job_id, "owner": worker_id, "finished": utcnow()}
    return bool(session.execute(_FINISH, params).rowcount)


def finish_many(session: Session, job_ids: Sequence[int], worker_id: str) -> set[int]:
    """`finish` for several jobs in one statement; the ids that were still this worker's."""
    owned = set(
        session.scalars(
            select(_JOBS.c.id)
            .where(
                _JOBS.c.id.in_(list(job_ids)),
                _JOBS.c.worker_id == worker_id,
                _JOBS.c.state == JobState.RUNNING,
            )
            .with_for_update()
        )
    )
    if owned:
        session.execute(
            update(_JOBS)
            .where(_JOBS.c.id.in_(sorted(owned)))
            .values(state=JobState.DONE, lease_until=None, finished_at=utcnow())
        )
    return owned


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


def release_worker(
    db: Database, worker_id: str, reason: str, *, blame_job_id: int | None = None
) -> int:
    """A worker died: its running jobs are retried (or failed) at once, not after the lease.

    `blame_job_id`, the job it was killed for (a parse past its time or memory bound), fails
    for good; the other files of its group did nothing wrong and are retried.
    """
    with db.session() as session:
        jobs = session.scalars(
            select(Job).where(Job.worker_id == worker_id, Job.state == JobState.RUNNING)
        ).all()
        _release_claim(session, jobs, reason, blame_job_id)
        slices.release_held(session, [worker_id])
        return len(jobs)


def _requeue_uncounted(session: Session, worker_id: str, reason: str) -> list[Job]:
    """The worker's running jobs queued again for anyone, the attempt not counted (the file
    did nothing wrong), their groups as they were."""
    jobs = session.scalars(
        select(Job).where(Job.worker_id == worker_id, Job.state == JobState.RUNNING)
    ).all()
    for job in jobs:
        job.attempts = max(0, job.attempts - 1)
        _requeue_in_session(session, job, reason)
    return list(jobs)


def release_after_outage(db: Database, worker_id: str, reason: str) -> int:
    """A worker lost the database mid-file: its running jobs are queued again for anyone,
    the attempt not counted (the file did nothing wrong). Jobs whose lease ran out during
    the outage were already queued again (`expire_leases`) and are another's now."""
    with db.session() as session:
        return len(_requeue_uncounted(session, worker_id, reason))


def release_stopped(db: Database, worker_id: str, reason: str) -> int:
    """A worker its pool ended because the pool was stopped (SIGTERM): its running jobs are
    queued again, neither an attempt of theirs nor a death of their group, and the slices it
    held are free for another worker."""
    with db.session() as session:
        jobs = _requeue_uncounted(session, worker_id, reason)
        slices.release_held(session, [worker_id])
        return len(jobs)


def release_workers_like(db: Database, prefix: str, reason: str) -> int:
    """`release_worker` for every worker whose id starts with `prefix` (a dead pool's)."""
    with db.session() as session:
        jobs = session.scalars(
            select(Job).where(
                Job.worker_id.startswith(prefix, autoescape=True), Job.state == JobState.RUNNING
            )
        ).all()
        for claim in _by_worker(jobs).values():
            _release_claim(session, claim, reason)
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
