"""Progress of a set of files (one intake, one re-index...) read from the metadata DB."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from casescope.model.db import Database
from casescope.model.enums import TERMINAL_FILE_STATES, FileStatus, IndexState
from casescope.model.tables import EvidenceFile
from casescope.store.load_queue import ready_count


@dataclass(frozen=True)
class FileSet:
    """Files of one case with ids in [first_id, last_id]."""

    case_id: int
    first_id: int
    last_id: int


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    failed: int
    events_estimated: int
    events_done: int
    #: Files and load pieces (store/pieces.py) waiting for the index owner.
    awaiting_load: int
    #: Of those, the load pieces: each is a large INSERT already, worth loading at once.
    pieces_ready: int = 0
    #: Of `done`, the files whose job was cancelled before they had an outcome.
    cancelled: int = 0

    @property
    def completed(self) -> int:
        return self.done - self.failed - self.cancelled

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def searchable(self) -> bool:
        return self.finished and self.awaiting_load == 0


def read_progress(db: Database, files: FileSet) -> Progress:
    terminal = EvidenceFile.status.in_(TERMINAL_FILE_STATES)
    in_set = (
        EvidenceFile.case_id == files.case_id,
        EvidenceFile.id.between(files.first_id, files.last_id),
    )
    with db.read() as session:
        row = session.execute(
            select(
                func.count(),
                func.sum(case((terminal, 1), else_=0)),
                func.sum(case((EvidenceFile.status == FileStatus.FAILED, 1), else_=0)),
                func.sum(case((EvidenceFile.status == FileStatus.CANCELLED, 1), else_=0)),
                func.sum(EvidenceFile.events_estimated),
                func.sum(
                    case((terminal, EvidenceFile.event_count), else_=EvidenceFile.events_processed)
                ),
                func.sum(case((EvidenceFile.index_state == IndexState.PENDING, 1), else_=0)),
            ).where(*in_set)
        ).one()
        pieces = ready_count(session, in_set)
    total, done, failed, cancelled, estimated, events, pending = (int(v or 0) for v in row)
    return Progress(
        total, done, failed, max(estimated, events), events, pending + pieces, pieces, cancelled
    )
