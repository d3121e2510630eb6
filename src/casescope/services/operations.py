"""Bulk operations: every ingest, upload, re-process and retry is one, with its jobs.

Progress (files done/total, events, rate, ETA) is computed from the operation's job rows and
their files, never kept twice. Pause, resume and cancel are cooperative at file boundaries:
they change queued jobs only, and a running file always finishes (docs/web.md "Jobs").
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import (
    RETRYABLE_FILE_STATES,
    AuditAction,
    JobState,
    OperationKind,
    OperationState,
)
from casescope.model.operations import BulkOperation
from casescope.model.tables import AuditRecord, EvidenceFile, Job, utcnow
from casescope.workqueue import operation_jobs

#: Ids of Server-Sent Events are `step * STEP_IDS + n` (web/api/jobs.py, docs/web.md "Jobs").
STEP_IDS = 1_000_000


class OperationStateError(CasescopeError):
    """The operation is not in a state that allows what was asked (e.g. resume a running one)."""


@dataclass(frozen=True)
class OperationProgress:
    id: int
    case_id: int
    kind: str
    state: str
    created_by: str
    detail: str
    created_at: datetime
    finished_at: datetime | None
    sealed: bool
    files_total: int
    files_done: int
    files_failed: int
    files_cancelled: int
    files_running: int
    files_queued: int
    files_paused: int
    #: Failed or cancelled files of it still failed or cancelled (a retry has not processed
    #: them since): what "Retry failed" would queue.
    files_retryable: int
    events: int
    seconds: float  # running time, pauses excluded
    files_per_second: float
    events_per_second: float
    eta_seconds: float | None
    #: Grows whenever a file finishes or the state changes: the base of the SSE event ids.
    step: int

    @property
    def files_finished(self) -> int:
        return self.files_done + self.files_failed + self.files_cancelled

    @property
    def active(self) -> int:
        return self.files_running + self.files_queued + self.files_paused

    @property
    def finished(self) -> bool:
        """Terminal, and nothing of it is left to run: no more progress will come."""
        return OperationState(self.state).is_terminal and self.active == 0

    @property
    def percent(self) -> int:
        return 100 if not self.files_total else int(100 * self.files_finished / self.files_total)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(
            created_at=self.created_at.isoformat(),
            finished_at=self.finished_at.isoformat() if self.finished_at else None,
            files_finished=self.files_finished,
            finished=self.finished,
            percent=self.percent,
        )
        return data


def _touch(op: BulkOperation, state: OperationState | None = None) -> None:
    """Record a change of the operation (a new step for its event stream)."""
    now = time.time()
    if state is not None and state is not op.state:
        if op.state is OperationState.RUNNING and op.running_since is not None:
            op.active_seconds += max(0.0, now - op.running_since)
        op.running_since = now if state is OperationState.RUNNING else None
        op.state = state
    op.revision += 1
    op.updated_at = utcnow()


def create_operation(
    db: Database, case_id: int, kind: OperationKind, actor: str, detail: str = ""
) -> int:
    """A new, running, unsealed operation; its id."""
    with db.session() as session:
        op = BulkOperation(
            case_id=case_id,
            kind=kind,
            created_by=actor,
            detail=detail[:2000],
            running_since=time.time(),
        )
        session.add(op)
        session.flush()
        return op.id


def seal_operation(db: Database, operation_id: int) -> None:
    """No more jobs will be added: fix the total (an empty operation completes at once)."""
    with db.session() as session:
        op = _get(session, operation_id, lock=True)
        op.sealed = True
        op.files_total = sum(n for n, _ in operation_jobs.operation_counts(session, op.id).values())
        _touch(op)
        _complete_if_done(session, op)


def discard_if_empty(db: Database, operation_id: int) -> None:
    """Delete the operation if no job belongs to it."""
    with db.session() as session:
        if not operation_jobs.operation_counts(session, operation_id):
            session.execute(delete(BulkOperation).where(BulkOperation.id == operation_id))


@contextmanager
def intake_operation(
    db: Database, case_id: int, kind: OperationKind, actor: str, detail: str = ""
) -> Iterator[int]:
    """An operation for one intake: yields its id for `ingest_paths`, seals it afterwards
    (also when intake fails part way: the files registered so far are still processed)."""
    operation_id = create_operation(db, case_id, kind, actor, detail)
    try:
        yield operation_id
    finally:
        seal_operation(db, operation_id)


def _get(session: Session, operation_id: int, *, lock: bool = False) -> BulkOperation:
    query = select(BulkOperation).where(BulkOperation.id == operation_id)
    op = session.scalar(query.with_for_update() if lock else query)
    if op is None:
        raise NotFoundError(f"no operation {operation_id}")
    return op


def _active(session: Session, operation_id: int) -> dict[JobState, int]:
    counts = operation_jobs.operation_counts(session, operation_id)
    return {
        s: counts.get(s, (0, 0))[0] for s in (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED)
    }


def _complete_if_done(session: Session, op: BulkOperation) -> None:
    """Finish a sealed operation with nothing left to run (completed, or cancelled)."""
    if not op.sealed or op.finished_at is not None or any(_active(session, op.id).values()):
        return
    # Its clock stops when its last file finished, not when someone noticed.
    last = session.scalar(select(func.max(Job.finished_at)).where(Job.operation_id == op.id))
    end = last.replace(tzinfo=UTC) if last is not None and last.tzinfo is None else last
    op.finished_at = end or utcnow()
    if op.running_since is not None:
        op.active_seconds += max(0.0, op.finished_at.timestamp() - op.running_since)
        op.running_since = None
    _touch(op, OperationState.COMPLETED if op.state is not OperationState.CANCELLED else op.state)


def _reconcile(session: Session, op: BulkOperation) -> None:
    """Keep the jobs in line with the operation's state.

    A running file whose attempt fails is re-queued by the queue, which knows nothing of
    pauses: such a job is paused (or cancelled) here as soon as progress is next read.
    """
    active = _active(session, op.id)
    if active[JobState.QUEUED] and op.state is OperationState.PAUSED:
        operation_jobs.pause_jobs(session, op.id)
    elif op.state is OperationState.CANCELLED and (
        active[JobState.QUEUED] or active[JobState.PAUSED]
    ):
        operation_jobs.cancel_jobs(session, op.id, "its operation was cancelled")
    _complete_if_done(session, op)


def _needs_reconcile(p: OperationProgress) -> bool:
    if p.finished_at is None and p.sealed and p.active == 0:
        return True
    if p.state == OperationState.PAUSED and p.files_queued:
        return True
    return p.state == OperationState.CANCELLED and bool(p.files_queued or p.files_paused)


def _retryable_query(operation_id: int) -> Select:
    return (
        select(Job.file_id)
        .join(EvidenceFile, EvidenceFile.id == Job.file_id)
        .where(
            Job.operation_id == operation_id,
            Job.state.in_((JobState.FAILED, JobState.CANCELLED)),
            EvidenceFile.status.in_(RETRYABLE_FILE_STATES),
        )
    )


def _retryable(session: Session, operation_id: int) -> int:
    subquery = _retryable_query(operation_id).subquery()
    return session.scalar(select(func.count()).select_from(subquery)) or 0


def _progress(session: Session, op: BulkOperation) -> OperationProgress:
    counts = operation_jobs.operation_counts(session, op.id)

    def n(state: JobState) -> int:
        return counts.get(state, (0, 0))[0]

    total = sum(c for c, _ in counts.values())
    events = sum(ev for _, ev in counts.values())
    seconds = op.active_seconds
    if op.state is OperationState.RUNNING and op.running_since is not None:
        seconds += max(0.0, time.time() - op.running_since)
    processed = n(JobState.DONE) + n(JobState.FAILED)
    files_rate = processed / seconds if seconds > 0 else 0.0
    remaining = n(JobState.QUEUED) + n(JobState.RUNNING) + n(JobState.PAUSED)
    eta = (
        remaining / files_rate
        if files_rate and remaining and op.state is OperationState.RUNNING
        else None
    )
    finished = processed + n(JobState.CANCELLED)
    return OperationProgress(
        id=op.id,
        case_id=op.case_id,
        kind=op.kind.value,
        state=op.state.value,
        created_by=op.created_by,
        detail=op.detail,
        created_at=op.created_at,
        finished_at=op.finished_at,
        sealed=op.sealed,
        files_total=max(total, op.files_total),
        files_done=n(JobState.DONE),
        files_failed=n(JobState.FAILED),
        files_cancelled=n(JobState.CANCELLED),
        files_running=n(JobState.RUNNING),
        files_queued=n(JobState.QUEUED),
        files_paused=n(JobState.PAUSED),
        files_retryable=_retryable(session, op.id)
        if n(JobState.FAILED) + n(JobState.CANCELLED)
        else 0,
        events=events,
        seconds=round(seconds, 3),
        files_per_second=round(files_rate, 3),
        events_per_second=round(events / seconds, 1) if seconds > 0 else 0.0,
        eta_seconds=round(eta, 1) if eta is not None else None,
        step=op.revision + finished,
    )


def get_progress(db: Database, operation_id: int, case_id: int | None = None) -> OperationProgress:
    """The operation's progress (of `case_id`, when given: another case's is not found)."""
    with db.read() as session:
        op = _get(session, operation_id)
        if case_id is not None and op.case_id != case_id:
            raise NotFoundError(f"no operation {operation_id} in case {case_id}")
        progress = _progress(session, op)
    if not _needs_reconcile(progress):
        return progress
    with db.session() as session:
        op = _get(session, operation_id, lock=True)
        _reconcile(session, op)
        session.flush()
        return _progress(session, op)


def list_operations(
    db: Database, case_id: int | None = None, limit: int = 50
) -> list[OperationProgress]:
    """The latest operations (of one case, or all), newest first."""
    query = select(BulkOperation.id).order_by(BulkOperation.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(BulkOperation.case_id == case_id)
    with db.read() as session:
        ids = list(session.scalars(query))
    return [get_progress(db, operation_id) for operation_id in ids]


def _audit(
    session: Session, op: BulkOperation, actor: str, action: AuditAction, detail: str
) -> None:
    """An audit row of `op`, its detail led by the operation's id."""
    detail = f"operation {op.id}: {detail}"[:2000]
    session.add(AuditRecord(actor=actor, action=action, case_id=op.case_id, detail=detail))


@contextmanager
def _change(
    db: Database,
    operation_id: int,
    case_id: int | None,
    allowed: Sequence[OperationState],
) -> Iterator[tuple[Session, BulkOperation]]:
    with db.session() as session:
        op = _get(session, operation_id, lock=True)
        if case_id is not None and op.case_id != case_id:
            raise NotFoundError(f"no operation {operation_id} in case {case_id}")
        if op.state not in allowed:
            raise OperationStateError(
                f"operation {operation_id} is {op.state.value}: only a running or paused "
                "operation can be paused, resumed or cancelled"
            )
        yield session, op


def pause(db: Database, operation_id: int, actor: str, case_id: int | None = None) -> int:
    """Stop claims of the operation's files; running files finish. Returns the jobs paused."""
    states = (OperationState.RUNNING, OperationState.PAUSED)
    with _change(db, operation_id, case_id, states) as (session, op):
        paused = operation_jobs.pause_jobs(session, op.id)
        if op.state is not OperationState.PAUSED:
            _touch(op, OperationState.PAUSED)
        _audit(session, op, actor, AuditAction.OPERATION_PAUSE, f"{paused} jobs paused")
        return paused


def resume(db: Database, operation_id: int, actor: str, case_id: int | None = None) -> int:
    """Queue the paused files again, in their former order. Returns the jobs resumed."""
    states = (OperationState.RUNNING, OperationState.PAUSED)
    with _change(db, operation_id, case_id, states) as (session, op):
        resumed = operation_jobs.resume_jobs(session, op.id)
        if op.state is not OperationState.RUNNING:
            _touch(op, OperationState.RUNNING)
        _audit(session, op, actor, AuditAction.OPERATION_RESUME, f"{resumed} jobs resumed")
        return resumed


def cancel(db: Database, operation_id: int, actor: str, case_id: int | None = None) -> int:
    """Cancel the queued and paused files (running ones finish). Returns the files cancelled."""
    states = (OperationState.RUNNING, OperationState.PAUSED)
    with _change(db, operation_id, case_id, states) as (session, op):
        files = operation_jobs.cancel_jobs(
            session, op.id, f"operation {op.id} cancelled by {actor}"
        )
        _touch(op, OperationState.CANCELLED)
        cancelled = f"{len(files)} files cancelled"
        _audit(session, op, actor, AuditAction.OPERATION_CANCEL, cancelled)
        _complete_if_done(session, op)
        return len(files)


def failed_files(db: Database, operation_id: int) -> list[int]:
    """Files whose job in the operation failed or was cancelled and that are failed or
    cancelled now (not since processed by a retry)."""
    with db.read() as session:
        return list(session.scalars(_retryable_query(operation_id).order_by(Job.file_id)))
