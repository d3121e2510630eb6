"""What waits for the index owner, from the metadata DB alone: files pending a load, and the
load pieces of large files (store/pieces.py), which workers publish here.

Apart from the loading itself (store/loader.py, store/pieces.py) so that workers and the
commands that only report progress or decide whether to open the index (`status`,
`ingest`'s progress bars) do not import the index's load machinery (Arrow, Parquet) with
it (bench/cli.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import ColumnElement, Select, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from casescope.model.db import Database
from casescope.model.enums import IndexState, JobState
from casescope.model.tables import EvidenceFile, Job, LoadPiece, Segment

_PIECES = LoadPiece.__table__
#: A piece loads once its job runs or is done, and is dropped once its job failed or was
#: cancelled.
LIVE = (JobState.RUNNING, JobState.DONE)
ABANDONED = (JobState.FAILED, JobState.CANCELLED)


def publish_piece(
    db: Database, job_id: int, attempt: int, file_id: int, piece: int, seq: range, path: Path
) -> None:
    """Offer a complete piece to the index owner (the first piece of an attempt also
    withdraws the pieces of earlier attempts)."""
    with db.session() as session:
        add_piece(session, job_id, attempt, file_id, piece, seq, path)


def add_piece(
    session: Session,
    job_id: int,
    attempt: int,
    file_id: int,
    piece: int,
    seq: range,
    path: Path,
) -> None:
    """`publish_piece` in the caller's transaction. A piece published again by its
    attempt (a slice run again after its worker died: jobs/slices.py) replaces its row, so
    the owner loads it again, clearing its `seq` range first."""
    if piece == 0:
        session.execute(
            delete(_PIECES).where(
                _PIECES.c.file_id == file_id,
                or_(_PIECES.c.job_id != job_id, _PIECES.c.attempt < attempt),
            )
        )
    session.execute(
        delete(_PIECES).where(
            _PIECES.c.file_id == file_id,
            _PIECES.c.job_id == job_id,
            _PIECES.c.attempt == attempt,
            _PIECES.c.piece == piece,
        )
    )
    session.execute(
        insert(_PIECES).values(
            file_id=file_id,
            job_id=job_id,
            attempt=attempt,
            piece=piece,
            seq_from=seq.start,
            seq_to=seq.stop,
            path=str(path),
            loaded=False,
        )
    )


def ready_pieces_query(query: Select) -> Select:
    """Pieces of a job's current attempt, running or done, not loaded yet."""
    return query.join(Job, Job.id == LoadPiece.job_id).where(
        LoadPiece.loaded.is_(False),
        Job.attempts == LoadPiece.attempt,
        Job.state.in_(LIVE),
    )


def ready_count(session: Session, file_filter: Iterable[ColumnElement[bool]]) -> int:
    """Pieces waiting for the owner among the files matching `file_filter` (progress)."""
    query = select(func.count()).select_from(LoadPiece)
    query = ready_pieces_query(query).join(EvidenceFile, EvidenceFile.id == LoadPiece.file_id)
    return int(session.scalar(query.where(*file_filter)) or 0)


def pieces_waiting(session: Session) -> bool:
    """Whether a piece awaits the owner: ready to load, or of an abandoned job to drop."""
    ready = session.scalar(ready_pieces_query(select(LoadPiece.id)).limit(1))
    abandoned = session.scalar(
        select(LoadPiece.id)
        .join(Job, Job.id == LoadPiece.job_id)
        .where(Job.state.in_(ABANDONED))
        .limit(1)
    )
    return ready is not None or abandoned is not None


def load_waiting(db: Database) -> bool:
    """Whether `loader.load_pending` has anything to do now (files pending, pieces ready or to
    drop), from the metadata DB alone: an owner that shares its index with readers
    (`store/shared_index.py`) takes the index for itself only when it will load."""
    with db.read() as session:
        pending = session.scalar(
            select(EvidenceFile.id)
            .join(Segment, Segment.id == EvidenceFile.segment_id)
            .where(EvidenceFile.index_state == IndexState.PENDING)
            .limit(1)
        )
        return pending is not None or pieces_waiting(session)
