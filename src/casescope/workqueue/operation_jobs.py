"""Jobs that belong to a bulk operation (services/operations.py): pause, resume, cancel.

A bulk operation (an ingest, upload, re-process or retry) groups its files' jobs under an
`operations` row. Paused jobs are never claimable; cancelling returns each untouched file to
its previous outcome; jobs added to a paused or cancelled operation follow its state, so no
file is left behind. Claims, leases and completion are the queue's (jobs/queue.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session

from casescope.model.enums import FileStatus, JobState, Operation, OperationState
from casescope.model.operations import BulkOperation
from casescope.model.tables import EvidenceFile, Job, utcnow
from casescope.workqueue.queue import enqueue


def _operation_state(session: Session, operation_id: int) -> OperationState | None:
    """The operation's state, read under a shared row lock on PostgreSQL."""
    state = session.scalar(
        select(BulkOperation.state)
        .where(BulkOperation.id == operation_id)
        .with_for_update(read=True)
    )
    return OperationState(state) if state is not None else None


def enqueue_new(
    session: Session,
    files: Sequence[EvidenceFile],
    operation: Operation,
    operation_id: int | None,
    *,
    max_attempts: int,
) -> list[Job]:
    """`enqueue_in_operation` for files created in this transaction (intake), which cannot
    have an active job yet: one INSERT for all their jobs instead of a query and a flush each.
    """
    for file in files:
        file.status, file.error = FileStatus.QUEUED, None
    if not files:
        return []
    state = _operation_state(session, operation_id) if operation_id is not None else None
    initial = JobState.PAUSED if state is OperationState.PAUSED else JobState.QUEUED
    jobs = [
        Job(
            file_id=file.id,
            operation=operation,
            max_attempts=max_attempts,
            operation_id=operation_id,
            state=initial,
        )
        for file in files
    ]
    session.add_all(jobs)
    session.flush()
    if state is OperationState.CANCELLED and operation_id is not None:
        cancel_jobs(session, operation_id, "its operation was cancelled")
    return jobs


def enqueue_in_operation(
    session: Session,
    file: EvidenceFile,
    operation: Operation,
    operation_id: int | None,
    *,
    max_attempts: int,
    priority: int = 100,
) -> Job | None:
    """`enqueue`, with the job belonging to a bulk operation (when `operation_id` is given).

    A job added to a paused operation waits paused; one added to a cancelled operation is
    cancelled at once (its file is failed with the reason), so no file is left behind.
    """
    with session.no_autoflush:  # the previous job's changes go with `enqueue`'s own flush
        state = _operation_state(session, operation_id) if operation_id is not None else None
    job = enqueue(session, file, operation, max_attempts=max_attempts, priority=priority)
    if job is None or operation_id is None:
        return job
    job.operation_id = operation_id
    if state is OperationState.PAUSED:
        job.state = JobState.PAUSED
    elif state is OperationState.CANCELLED:
        session.flush()
        cancel_jobs(session, operation_id, "its operation was cancelled")
    return job


def pause_jobs(session: Session, operation_id: int) -> int:
    """Queued jobs of the operation become paused (not claimable); running ones go on."""
    result = session.execute(
        update(Job)
        .where(Job.operation_id == operation_id, Job.state == JobState.QUEUED)
        .values(state=JobState.PAUSED)
    )
    return result.rowcount or 0


def resume_jobs(session: Session, operation_id: int) -> int:
    """Paused jobs become queued again; they keep their priority and id, so the claim order
    (priority, then id) is the order they had."""
    result = session.execute(
        update(Job)
        .where(Job.operation_id == operation_id, Job.state == JobState.PAUSED)
        .values(state=JobState.QUEUED)
    )
    return result.rowcount or 0


def _prior_outcomes(session: Session, file_ids: list[int], before: dict[int, int]) -> dict:
    """For each file, the state and error of its latest finished job older than `before`."""
    outcomes: dict[int, tuple[JobState, str | None]] = {}
    for start in range(0, len(file_ids), 500):
        rows = session.execute(
            select(Job.file_id, Job.id, Job.state, Job.last_error)
            .where(
                Job.file_id.in_(file_ids[start : start + 500]),
                Job.state.in_((JobState.DONE, JobState.FAILED)),
            )
            .order_by(Job.id)
        )
        for file_id, job_id, state, error in rows:
            if job_id < before[file_id]:
                outcomes[file_id] = (JobState(state), error)
    return outcomes


def _restored(
    attempts: int, last_error: str | None, prior: tuple[JobState, str | None] | None, reason: str
) -> tuple[FileStatus, str | None]:
    """The file's status and error once its job is cancelled (see docs/web.md "Jobs")."""
    if attempts == 0 and prior is not None and prior[0] is JobState.DONE:
        return FileStatus.COMPLETED, None
    if attempts == 0 and prior is not None:
        return FileStatus.FAILED, prior[1]
    error = f"cancelled: {reason}"
    if attempts:
        error += f" (after {attempts} attempts; last error: {last_error})"
    return FileStatus.CANCELLED, error


_CANCEL_JOB = (
    update(Job.__table__)
    .where(Job.__table__.c.id == bindparam("job_id"))
    .values(
        state=JobState.CANCELLED,
        lease_until=None,
        finished_at=bindparam("at"),
        last_error=bindparam("why"),
    )
)
_RESTORE_FILE = (
    update(EvidenceFile.__table__)
    .where(EvidenceFile.__table__.c.id == bindparam("file_id"))
    .values(status=bindparam("status"), error=bindparam("error"))
)


def cancel_jobs(session: Session, operation_id: int, reason: str) -> list[int]:
    """Cancel the operation's queued and paused jobs; their files become terminal again.

    A file whose job never started (no attempt) returns to the outcome of its previous job:
    completed, or failed with that error; the cancelled work never touched it. A file with no
    earlier outcome, or whose job was attempted (a retry waiting), is failed with the reason,
    so `retry` can process it later. Running jobs are not touched: they finish their file.
    Returns the ids of the files whose job was cancelled.
    """
    session.flush()
    jobs = session.execute(
        select(Job.id, Job.file_id, Job.attempts, Job.last_error).where(
            Job.operation_id == operation_id,
            Job.state.in_((JobState.QUEUED, JobState.PAUSED)),
        )
    ).all()
    if not jobs:
        return []
    prior = _prior_outcomes(session, [j.file_id for j in jobs], {j.file_id: j.id for j in jobs})
    now, why = utcnow(), f"cancelled: {reason}"
    files = []
    for job in jobs:
        status, error = _restored(job.attempts, job.last_error, prior.get(job.file_id), reason)
        files.append({"file_id": job.file_id, "status": status, "error": error})
    session.execute(_CANCEL_JOB, [{"job_id": j.id, "at": now, "why": why} for j in jobs])
    session.execute(_RESTORE_FILE, files)
    session.expire_all()  # ORM objects loaded before must not write old values back
    return [j.file_id for j in jobs]


def operation_counts(session: Session, operation_id: int) -> dict[JobState, tuple[int, int]]:
    """Per job state of the operation: (jobs, events) — events of finished files, events
    parsed so far of running ones."""
    events = case(
        (Job.state == JobState.DONE, EvidenceFile.event_count),
        (Job.state == JobState.RUNNING, EvidenceFile.events_processed),
        else_=0,
    )
    rows = session.execute(
        select(Job.state, func.count(), func.coalesce(func.sum(events), 0))
        .join(EvidenceFile, EvidenceFile.id == Job.file_id)
        .where(Job.operation_id == operation_id)
        .group_by(Job.state)
    )
    return {JobState(state): (int(n), int(ev)) for state, n, ev in rows}
