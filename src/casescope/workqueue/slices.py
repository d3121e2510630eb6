"""Slices of a large EVTX file's job attempt: the `file_slices` table as a second queue.

The job's owner plans the slices of its attempt (`plan`); any worker with nothing else to
claim takes one (`claim`) under a lease like a job's, renewed by its heartbeat. A slice whose
lease runs out (its worker died) is claimed again. Only slices of a job's current, running
attempt are claimable, and a worker writes a slice's results only while the slice is still
its own run of the current attempt (`held`): a worker that lost its lease, or whose
attempt was replaced, writes nothing (docs/decisions.md, "Large files load in pieces",
Slices).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from casescope.model.db import Database
from casescope.model.enums import JobState, Operation, SliceState
from casescope.model.tables import FileSlice, Job
from casescope.parse.evtx_slices import Slice

_SLICES = FileSlice.__table__
_JOBS = Job.__table__


@dataclass(frozen=True)
class ClaimedSlice:
    id: int
    job_id: int
    attempt: int
    file_id: int
    operation: Operation
    number: int
    part: Slice
    first_piece: int
    run: int  # the claim this is (`FileSlice.runs`)

    @property
    def seqs(self) -> range:
        return range(self.part.seq_from, self.part.seq_to)


def first_pieces(planned: Sequence[Slice], piece_rows: int) -> list[int]:
    """Each slice's first load-piece number: a slice of n events writes at most
    n // piece_rows + 1 pieces (`segments.PieceWriter`), so later slices number after it."""
    firsts, next_piece = [], 0
    for part in planned:
        firsts.append(next_piece)
        next_piece += part.events // piece_rows + 1
    return firsts


def plan(
    session: Session,
    job_id: int,
    attempt: int,
    file_id: int,
    planned: Sequence[Slice],
    piece_rows: int,
) -> None:
    """Record the slices of this attempt (in the caller's transaction); the slices of
    earlier attempts go: their workers then find their slice gone and write nothing."""
    session.execute(delete(_SLICES).where(_SLICES.c.job_id == job_id))
    rows = [
        {
            "file_id": file_id,
            "job_id": job_id,
            "attempt": attempt,
            "number": number,
            "chunk_from": part.chunk_from,
            "chunk_to": part.chunk_to,
            "seq_from": part.seq_from,
            "events": part.events,
            "first_piece": first,
            "state": SliceState.QUEUED,
            "runs": 0,
            "detections": 0,
            "ioc_hits": 0,
            "warnings": "",
        }
        for number, (part, first) in enumerate(
            zip(planned, first_pieces(planned, piece_rows), strict=True)
        )
    ]
    session.execute(insert(_SLICES), rows)


def found_invalid(session: Session, job_id: int) -> bool:
    """Whether an earlier attempt of the job found that its file cannot be sliced."""
    query = select(_SLICES.c.id).where(
        _SLICES.c.job_id == job_id, _SLICES.c.state == SliceState.INVALID
    )
    return session.scalar(query.limit(1)) is not None


#: The slice's attempt is its job's current one, and running.
_OF_RUNNING_ATTEMPT = (
    _JOBS.c.id == _SLICES.c.job_id,
    _JOBS.c.attempts == _SLICES.c.attempt,
    _JOBS.c.state == JobState.RUNNING,
)
_CURRENT_ATTEMPT = select(_JOBS.c.id).where(*_OF_RUNNING_ATTEMPT).correlate_except(_JOBS).exists()


def _claimable(now: float) -> list:
    waiting = or_(
        _SLICES.c.state == SliceState.QUEUED,
        and_(_SLICES.c.state == SliceState.RUNNING, _SLICES.c.lease_until < now),
    )
    return [waiting, *_OF_RUNNING_ATTEMPT]


_ANY_WAITING = (
    select(_SLICES.c.id)
    .where(_SLICES.c.state.in_([SliceState.QUEUED, SliceState.RUNNING]))
    .limit(1)
)


def _any_waiting(db: Database) -> bool:
    """Whether any slice is queued or running (one may be claimable), read without a lock."""
    with db.read() as session:
        return session.execute(_ANY_WAITING).first() is not None


def claim(
    db: Database, worker_id: str, lease_seconds: float, job_id: int | None = None
) -> ClaimedSlice | None:
    """Take the first waiting slice (of `job_id`'s current attempt, when given), or None."""
    now = time.time()
    query = (
        select(FileSlice, Job.operation)
        .select_from(FileSlice)
        .join(Job, Job.id == FileSlice.job_id)
        .where(*_claimable(now))
        .order_by(FileSlice.job_id, FileSlice.number)
        .limit(1)
        .with_for_update(skip_locked=True, of=FileSlice)
    )
    if job_id is not None:
        query = query.where(FileSlice.job_id == job_id)
    elif not _any_waiting(db):  # idle workers ask often: no write transaction for nothing
        return None
    with db.session() as session:
        found = session.execute(query).first()
        if found is None:
            return None
        row, operation = found
        row.state, row.worker_id = SliceState.RUNNING, worker_id
        row.lease_until, row.runs, row.error = now + lease_seconds, row.runs + 1, None
        part = Slice(row.chunk_from, row.chunk_to, row.seq_from, row.events)
        return ClaimedSlice(
            row.id,
            row.job_id,
            row.attempt,
            row.file_id,
            Operation(operation),
            row.number,
            part,
            row.first_piece,
            row.runs,
        )


def _held(claimed: ClaimedSlice, worker_id: str) -> list:
    return [
        _SLICES.c.id == claimed.id,
        _SLICES.c.worker_id == worker_id,
        _SLICES.c.runs == claimed.run,
        _SLICES.c.state == SliceState.RUNNING,
        _CURRENT_ATTEMPT,
    ]


def renew(db: Database, claimed: ClaimedSlice, worker_id: str, lease_seconds: float) -> bool:
    """Extend the slice's lease; False once it is no longer this worker's run."""
    lease = time.time() + lease_seconds
    with db.session() as session:
        statement = update(_SLICES).where(*_held(claimed, worker_id)).values(lease_until=lease)
        return bool(session.execute(statement).rowcount)


def held(session: Session, claimed: ClaimedSlice, worker_id: str) -> bool:
    """Whether the slice is still this worker's run of the current attempt, its row locked
    for the caller's transaction (which then writes the slice's pieces or results)."""
    statement = (
        update(_SLICES).where(*_held(claimed, worker_id)).values(lease_until=_SLICES.c.lease_until)
    )
    return bool(session.execute(statement).rowcount)


def finish(
    session: Session, claimed: ClaimedSlice, worker_id: str, found: tuple[int, int], warnings: str
) -> bool:
    """Mark the slice done with its (detections, IOC hits), in the caller's transaction that
    wrote them; False (write nothing) once it is no longer this worker's run."""
    statement = (
        update(_SLICES)
        .where(*_held(claimed, worker_id))
        .values(
            state=SliceState.DONE,
            lease_until=None,
            detections=found[0],
            ioc_hits=found[1],
            warnings=warnings,
        )
    )
    return bool(session.execute(statement).rowcount)


def fail(
    db: Database, claimed: ClaimedSlice, worker_id: str, error: str, *, invalid: bool = False
) -> None:
    """The slice failed (`invalid`: its events were not those its chunk headers name); its
    job's owner then fails the attempt."""
    state = SliceState.INVALID if invalid else SliceState.FAILED
    with db.session() as session:
        session.execute(
            update(_SLICES)
            .where(*_held(claimed, worker_id))
            .values(state=state, lease_until=None, error=error)
        )


@dataclass(frozen=True)
class AttemptSlices:
    """Where the slices of one attempt stand."""

    states: Counter[SliceState]
    errors: list[str]
    events: int
    detections: int
    ioc_hits: int
    warnings: list[str]
    workers: list[str]

    @property
    def done(self) -> bool:
        return set(self.states) == {SliceState.DONE}


def attempt_slices(db: Database, job_id: int, attempt: int) -> AttemptSlices:
    query = (
        select(FileSlice)
        .where(FileSlice.job_id == job_id, FileSlice.attempt == attempt)
        .order_by(FileSlice.number)
    )
    with db.read() as session:
        rows = session.scalars(query).all()
        return AttemptSlices(
            Counter(row.state for row in rows),
            [f"slice {row.number}: {row.error}" for row in rows if row.error],
            sum(row.events for row in rows),
            sum(row.detections for row in rows),
            sum(row.ioc_hits for row in rows),
            [row.warnings for row in rows if row.warnings],
            sorted({row.worker_id for row in rows if row.worker_id}),
        )


def release_held(session: Session, worker_ids: Sequence[str]) -> int:
    """The running slices of dead workers are queued again at once, not after the lease."""
    if not worker_ids:
        return 0
    statement = (
        update(_SLICES)
        .where(_SLICES.c.worker_id.in_(list(worker_ids)), _SLICES.c.state == SliceState.RUNNING)
        .values(state=SliceState.QUEUED, lease_until=None)
    )
    return session.execute(statement).rowcount
